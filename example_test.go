package allot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/allot-dev/allot"
)

// A configuration with one experiment: every subject takes part, half in
// "control" and half in "treatment", and assignments are logged.
const exampleConfig = `{
  "createdAt": "2026-01-01T00:00:00Z", "format": "SERVER", "environment": {"name": "production"},
  "flags": {"checkout-experiment": {
    "key": "checkout-experiment", "enabled": true, "variationType": "STRING", "totalShards": 10000,
    "variations": {"control": {"key": "control", "value": "control"}, "treatment": {"key": "treatment", "value": "treatment"}},
    "allocations": [{"key": "launch", "doLog": true, "splits": [
      {"variationKey": "control", "shards": [{"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 0, "end": 5000}]}]},
      {"variationKey": "treatment", "shards": [{"salt": "c4e8a2f6b0d9e1a7", "ranges": [{"start": 5000, "end": 10000}]}]}]}]}}}`

// stdoutLogger writes each assignment event as a line of JSON; a real
// one would write to a queue or a warehouse table.
type stdoutLogger struct{}

func (stdoutLogger) LogAssignment(e allot.AssignmentEvent) {
	fmt.Printf("logged: %s %s %s\n", e.Experiment, e.Subject, e.Variation)
}

// A service initialises the client once, assigns, and closes it at exit.
// Here an httptest server stands in for the Allot server.
func Example() {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// GET /api/flag-config/v1/config?apiKey=...&sdkName=go-allot&sdkVersion=...
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, exampleConfig)
	}))
	defer server.Close()

	ctx := context.Background()
	client, err := allot.Init(ctx, allot.Config{
		SDKKey:           "my-sdk-key",
		BaseURL:          server.URL + "/api",
		InitTimeout:      2 * time.Second,
		AssignmentLogger: stdoutLogger{},
	})
	if err != nil {
		log.Printf("allot not ready, serving defaults: %v", err)
	}
	defer client.Close(ctx)

	for _, user := range []string{"user-1", "user-2", "user-1"} {
		variation, ok := allot.Instance().GetAssignment("checkout-experiment", user, allot.Attributes{"country": "FR"})
		fmt.Println(user, variation, ok)
	}
	// Deliver the queued events (Close does it too).
	_ = client.Flush(ctx)
	// Events of different subjects may reach the logger in any order.

	// Unordered output:
	// user-1 control true
	// user-2 treatment true
	// user-1 control true
	// logged: checkout-experiment-launch user-1 control
	// logged: checkout-experiment-launch user-2 treatment
}

// A typed getter returns the flag's value, or the default when the flag
// does not apply; the Details form says why.
func ExampleClient_GetStringAssignmentDetails() {
	client, _ := allot.NewClient(context.Background(), allot.Config{
		Offline:              true,
		InitialConfiguration: []byte(exampleConfig),
	})
	defer client.Close(context.Background())

	v, d := client.GetStringAssignmentDetails("checkout-experiment", "user-2", nil, "control")
	fmt.Println(v, d.Code, d.Allocation)
	v, d = client.GetStringAssignmentDetails("no-such-flag", "user-2", nil, "fallback")
	fmt.Println(v, d.Code)
	n, d := client.GetIntegerAssignmentDetails("checkout-experiment", "user-2", nil, 3)
	fmt.Println(n, d.Code)
	// Output:
	// treatment MATCH launch
	// fallback FLAG_UNRECOGNIZED_OR_DISABLED
	// 3 TYPE_MISMATCH
}

// Config.InitialConfiguration and Config.CacheFile let a process serve
// assignments when the server cannot be reached at start.
func ExampleConfig_cacheFile() {
	dir, _ := os.MkdirTemp("", "allot-example")
	defer os.RemoveAll(dir)
	cache := dir + "/allot-config.json"
	_ = os.WriteFile(cache, []byte(exampleConfig), 0o600) // as a previous run left it

	client, err := allot.NewClient(context.Background(), allot.Config{
		BaseURL:     "http://127.0.0.1:1/api", // nothing listens there
		CacheFile:   cache,
		InitTimeout: 100 * time.Millisecond,
	})
	defer client.Close(context.Background())

	fmt.Println(err != nil)
	st := client.Status()
	fmt.Println(st.Ready, st.Source, st.Environment, st.Flags)
	fmt.Println(client.GetStringAssignment("checkout-experiment", "user-1", nil, "off"))
	// Output:
	// true
	// true cache production 1
	// control
}

// GetJSONBytesAssignment decodes into the caller's own type.
func ExampleClient_GetJSONBytesAssignment() {
	client, _ := allot.NewClient(context.Background(), allot.Config{
		Offline: true,
		InitialConfiguration: []byte(`{"format": "SERVER", "flags": {"layout": {
			"key": "layout", "enabled": true, "variationType": "JSON", "totalShards": 10000,
			"variations": {"dense": {"key": "dense", "value": "{\"columns\": 3, \"compact\": true}"}},
			"allocations": [{"key": "all", "doLog": false, "splits": [{"variationKey": "dense", "shards": []}]}]}}}`),
	})
	defer client.Close(context.Background())

	var layout struct {
		Columns int  `json:"columns"`
		Compact bool `json:"compact"`
	}
	raw := client.GetJSONBytesAssignment("layout", "user-1", nil, []byte(`{"columns": 1}`))
	if err := json.Unmarshal(raw, &layout); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%+v\n", layout)
	// Output:
	// {Columns:3 Compact:true}
}

// Send assignment events to an Allot server, where they become the
// assignment table. (Not run: it needs a server.)
func ExampleNewHTTPLogger() {
	ctx := context.Background()
	events, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{
		SDKKey:   "allot_sdk_...",
		BaseURL:  "http://localhost:8080/api",
		SpoolDir: "/var/lib/myservice/allot-events", // optional: survive restarts and outages
	})
	if err != nil {
		log.Fatal(err)
	}
	client, err := allot.Init(ctx, allot.Config{
		SDKKey:           "allot_sdk_...",
		BaseURL:          "http://localhost:8080/api",
		AssignmentLogger: events,
	})
	if err != nil {
		log.Printf("allot: %v (serving defaults until a configuration arrives)", err)
	}
	defer client.Close(ctx) // flushes and closes the HTTP logger too

	if v, ok := client.GetAssignment("checkout-button", "user-42", allot.Attributes{"country": "US"}); ok {
		fmt.Println("variation", v)
	}
}
