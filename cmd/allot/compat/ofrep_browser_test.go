package compat_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

type ofrepDetail struct {
	Key       string  `json:"key"`
	Value     string  `json:"value"`
	Variant   *string `json:"variant"`
	Reason    *string `json:"reason"`
	ErrorCode *string `json:"errorCode"`
}

type ofrepRequest struct {
	URL         string  `json:"url"`
	Status      int     `json:"status"`
	IfNoneMatch *string `json:"ifNoneMatch"`
	ETag        *string `json:"etag"`
}

// TestBrowserOFREP is issue 16's proof for OpenFeature's web provider:
// @openfeature/ofrep-web-provider 0.4.3 on @openfeature/web-sdk 1.10.0,
// bundled with esbuild into a page on another loopback origin, run in
// headless Chromium with a client key against `allot serve`. It gets its
// flags by bulk evaluation (cross-origin, CORS), a 304 when it asks again
// for an unchanged context, a 200 with new values for a changed one, and,
// when a flag changes through the API, an update through the event stream
// the bulk response advertises (the CLIENT stream of the client key).
//
// It needs compat/browser/node_modules and Chromium, as TestBrowserClientKey.
func TestBrowserOFREP(t *testing.T) {
	page := chromiumPage(t, pageSpec{entry: "browser/ofrep-entry.js", title: "OFREP page", timeout: 2 * time.Minute,
		body: `<body><p>OpenFeature's OFREP web provider with an Allot client key.</p></body>`})

	const admin = "allot_admin_browser-ofrep-0123456789"
	base := startServe(t, admin)
	c := apiclient.New(base, admin)
	ctx := context.Background()
	// banner: "nl" for subjects in the Netherlands, else "a" (later "b").
	if _, err := c.CreateFlag(ctx, core.Flag{Key: "banner", VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "a", Value: json.RawMessage(`"a"`)}, {Key: "b", Value: json.RawMessage(`"b"`)}, {Key: "nl", Value: json.RawMessage(`"nl"`)}}}); err != nil {
		t.Fatal(err)
	}
	settings := func(rest string, version int64) int64 {
		t.Helper()
		got, err := c.PutSettings(ctx, core.FlagSettings{Flag: "banner", Environment: core.DefaultEnvironment, Enabled: true, Version: version,
			Allocations: []core.Allocation{
				{Key: "dutch", Type: core.Targeted, Variation: "nl", Rules: []core.Rule{{Conditions: []core.Condition{
					{Attribute: "country", Operator: ufc.OpOneOf, Value: json.RawMessage(`["NL"]`)}}}}},
				{Key: "everyone", Type: core.Rollout, Percent: core.Whole, Variation: rest}}})
		if err != nil {
			t.Fatal(err)
		}
		return got.Version
	}
	version := settings("a", 0)
	key, err := c.CreateClientKey(ctx, core.DefaultEnvironment, "page", []string{page.URL})
	if err != nil {
		t.Fatal(err)
	}

	page.load()
	call := page.eval
	type state struct {
		Details  []ofrepDetail  `json:"details"`
		Changes  int            `json:"changes"`
		Requests []ofrepRequest `json:"requests"`
	}
	current := func() state {
		t.Helper()
		var s state
		if err := json.Unmarshal([]byte(call(`ofrepState(["banner"])`)), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	value := func(out string) ofrepDetail {
		t.Helper()
		var d []ofrepDetail
		if err := json.Unmarshal([]byte(out), &d); err != nil || len(d) != 1 {
			t.Fatalf("details %s: %v", out, err)
		}
		return d[0]
	}
	us := `{"targetingKey":"user-1","country":"US"}`

	// Bulk evaluation, cross-origin.
	arg, _ := json.Marshal(map[string]any{"baseUrl": base, "apiKey": key.Secret, "context": json.RawMessage(us), "flags": []string{"banner"}})
	if d := value(call("ofrepStart(" + string(arg) + ")")); d.Value != "a" || d.Variant == nil || *d.Variant != "a" || d.ErrorCode != nil {
		t.Fatalf("first evaluation %+v", d)
	}
	s := current()
	if len(s.Requests) == 0 || s.Requests[0].Status != 200 || !strings.Contains(s.Requests[0].URL, "/ofrep/v1/evaluate/flags") ||
		s.Requests[0].ETag == nil || *s.Requests[0].ETag == "" {
		t.Fatalf("bulk evaluation requests %+v", s.Requests)
	}

	// The same context again: the server answers 304.
	before := len(s.Requests)
	if d := value(call(`ofrepSetContext({"context":` + us + `,"flags":["banner"]})`)); d.Value != "a" {
		t.Fatalf("unchanged context: %+v", d)
	}
	s = current()
	var saw304 bool
	for _, r := range s.Requests[before:] {
		saw304 = saw304 || r.Status == 304 && r.IfNoneMatch != nil && *r.IfNoneMatch != ""
	}
	if !saw304 {
		t.Fatalf("no 304 for an unchanged context: %+v", s.Requests)
	}

	// A changed context: 200 and the new value.
	before = len(s.Requests)
	nl := `{"targetingKey":"user-1","country":"NL"}`
	if d := value(call(`ofrepSetContext({"context":` + nl + `,"flags":["banner"]})`)); d.Value != "nl" {
		t.Fatalf("changed context: %+v", d)
	}
	s = current()
	if len(s.Requests) == before || s.Requests[len(s.Requests)-1].Status != 200 {
		t.Fatalf("changed context requests %+v", s.Requests[before:])
	}
	if d := value(call(`ofrepSetContext({"context":` + us + `,"flags":["banner"]})`)); d.Value != "a" {
		t.Fatalf("back to the US: %+v", d)
	}

	// A change through the API reaches the page through the stream.
	changesBefore := current().Changes
	settings("b", version)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s = current()
		if s.Details[0].Value == "b" && s.Changes > changesBefore {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change never reached the page: %+v, %d change events; requests %+v", s.Details, s.Changes, s.Requests)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
