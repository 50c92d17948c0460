package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

const (
	pageOrigin  = "http://127.0.0.1:8081"
	otherOrigin = "http://evil.127.0.0.1.nip.io:8081"
)

// clientSetup starts a server holding one targeted experiment and returns
// it with a server key, a client key limited to pageOrigin and a client key
// for any origin.
func clientSetup(t *testing.T, dialect string) (s *server.Server, serverKey, clientKey, anyKey core.SDKKey) {
	t.Helper()
	s = start(t, server.Config{DB: storetest.DSN(t, dialect), AdminToken: adminToken})
	ctx := context.Background()
	c := apiclient.New(s.URL(), adminToken)
	variations := []core.Variation{{Key: "control", Value: json.RawMessage(`"blue"`)}, {Key: "treatment", Value: json.RawMessage(`"green"`)}}
	if _, err := c.CreateFlag(ctx, core.Flag{Key: "checkout-button", VariationType: ufc.TypeString, Variations: variations}); err != nil {
		t.Fatal(err)
	}
	_, err := c.PutSettings(ctx, core.FlagSettings{Flag: "checkout-button", Environment: "production", Enabled: true, Allocations: []core.Allocation{
		{Key: "dutch", Type: core.Targeted, Variation: "treatment", Rules: []core.Rule{{Conditions: []core.Condition{
			{Attribute: "country", Operator: ufc.OpOneOf, Value: json.RawMessage(`["NL","BE"]`)},
			{Attribute: "age", Operator: ufc.OpGTE, Value: json.RawMessage(`18`)}}}}},
		{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if serverKey, err = c.CreateSDKKey(ctx, "production", "backend"); err != nil {
		t.Fatal(err)
	}
	if clientKey, err = c.CreateClientKey(ctx, "production", "shop", []string{pageOrigin + "/", "https://shop.example.com"}); err != nil {
		t.Fatal(err)
	}
	if anyKey, err = c.CreateClientKey(ctx, "production", "app", nil); err != nil {
		t.Fatal(err)
	}
	return s, serverKey, clientKey, anyKey
}

// TestClientKeysAndCLIENTDocument: a client key reads the obfuscated CLIENT
// document (its own ETag, 304, gzip), which evaluates as the SERVER one; an
// Eppo client SDK gets it with a server key too; a client key is refused by
// the management API, the export and the SERVER document's admin endpoint.
func TestClientKeysAndCLIENTDocument(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			s, serverKey, clientKey, _ := clientSetup(t, dialect)
			if clientKey.Kind != "client" || !strings.HasPrefix(clientKey.Secret, "allot_client_") || serverKey.Kind != "server" {
				t.Fatalf("kinds: %+v %+v", clientKey, serverKey)
			}
			if got := clientKey.Origins; len(got) != 2 || got[0] != pageOrigin {
				t.Fatalf("origins not normalized: %q", got)
			}
			cfg := s.URL() + "/api/flag-config/v1/config?apiKey="
			code, hdr, serverBody := do(t, nil, "GET", cfg+serverKey.Secret+"&sdkName=go-allot", "", nil, "Accept-Encoding", "identity")
			if code != 200 || !strings.Contains(serverBody, `"format":"SERVER"`) {
				t.Fatalf("server key: %d %.100s", code, serverBody)
			}
			serverTag := hdr.Get("ETag")
			code, hdr, clientBody := do(t, nil, "GET", cfg+clientKey.Secret+"&sdkName=js-client-sdk&sdkVersion=4.14.4", "", nil, "Accept-Encoding", "identity")
			if code != 200 || !strings.Contains(clientBody, `"format":"CLIENT"`) {
				t.Fatalf("client key: %d %.100s", code, clientBody)
			}
			clientTag := hdr.Get("ETag")
			if clientTag == "" || clientTag == serverTag {
				t.Fatalf("CLIENT ETag %q, SERVER ETag %q", clientTag, serverTag)
			}
			for _, plain := range []string{"checkout-button", "country", "dutch", "NL", "green"} {
				if strings.Contains(clientBody, `"`+plain+`"`) {
					t.Errorf("CLIENT document shows %q: %s", plain, clientBody)
				}
			}
			// Whatever sdkName a client key claims, it never gets SERVER.
			if _, _, b := do(t, nil, "GET", cfg+clientKey.Secret+"&sdkName=go-allot", "", nil); b != clientBody {
				t.Fatalf("client key with a server sdkName got %.100s", b)
			}
			// An Eppo client SDK with a server key gets CLIENT too.
			for _, sdk := range []string{"js-client-sdk", "javascript", "react-native", "react-native-sdk", "ios", "android"} {
				if _, h, b := do(t, nil, "GET", cfg+serverKey.Secret+"&sdkName="+sdk, "", nil, "Accept-Encoding", "identity"); b != clientBody || h.Get("ETag") != clientTag {
					t.Fatalf("sdkName %s with a server key: %.100s", sdk, b)
				}
			}
			if code, _, _ := do(t, nil, "GET", cfg+clientKey.Secret, "", nil, "If-None-Match", clientTag); code != 304 {
				t.Fatalf("If-None-Match CLIENT: %d", code)
			}
			if code, _, _ := do(t, nil, "GET", cfg+clientKey.Secret, "", nil, "If-None-Match", serverTag); code != 200 {
				t.Fatalf("the SERVER ETag must not validate the CLIENT document: %d", code)
			}
			req, _ := http.NewRequest("GET", cfg+clientKey.Secret, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			unzipped, _ := io.ReadAll(zr)
			resp.Body.Close()
			if resp.Header.Get("Content-Encoding") != "gzip" || string(unzipped) != clientBody || resp.Header.Get("ETag") != strings.TrimSuffix(clientTag, `"`)+`-gz"` {
				t.Fatalf("gzip CLIENT: %v, same body %v", resp.Header, string(unzipped) == clientBody)
			}

			// The CLIENT document assigns every subject as the SERVER one.
			plain, err := eval.Load([]byte(serverBody))
			if err != nil {
				t.Fatal(err)
			}
			obf, err := eval.Load([]byte(clientBody))
			if err != nil || !obf.Obfuscated() {
				t.Fatalf("CLIENT document: %v", err)
			}
			now := time.Now()
			matched := map[string]int{}
			for i := range 2000 {
				attrs := map[string]any{"country": []string{"NL", "US", "BE"}[i%3], "age": i % 40}
				subject := fmt.Sprintf("user-%d", i)
				p := plain.Evaluate("checkout-button", subject, attrs, ufc.TypeString, now)
				o := obf.Evaluate("checkout-button", subject, attrs, ufc.TypeString, now)
				if p.Code != o.Code || p.VariationKey() != o.VariationKey() || p.AllocationKey() != o.AllocationKey() {
					t.Fatalf("%s %v: SERVER %s/%s, CLIENT %s/%s", subject, attrs, p.AllocationKey(), p.VariationKey(), o.AllocationKey(), o.VariationKey())
				}
				matched[p.AllocationKey()]++
			}
			if matched["dutch"] == 0 || matched["exp"] == 0 {
				t.Fatalf("both allocations should match someone: %v", matched)
			}

			// A client key is not an admin token: management, export and
			// the SERVER document's admin endpoint refuse it.
			for _, path := range []string{"/api/v1/flags", "/api/v1/sdk-keys", "/api/v1/assignments?environment=production&flag=checkout-button",
				"/api/v1/environments/production/config"} {
				if code, _, body := do(t, nil, "GET", s.URL()+path, "Bearer "+clientKey.Secret, nil); code != 401 {
					t.Errorf("client key on %s: %d %s", path, code, body)
				}
			}
			// A revoked client key reads nothing.
			c := apiclient.New(s.URL(), adminToken)
			if err := c.RevokeSDKKey(context.Background(), clientKey.ID); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				code, _, _ := do(t, nil, "GET", cfg+clientKey.Secret, "", nil)
				if code == 401 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("revoked client key still reads: %d", code)
				}
				time.Sleep(20 * time.Millisecond)
			}
			keys, err := c.SDKKeys(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]string{}
			for _, k := range keys {
				kinds[k.Name] = k.Kind + fmt.Sprint(k.Origins)
			}
			if kinds["backend"] != "server[]" || kinds["shop"] != "client["+pageOrigin+" https://shop.example.com]" || kinds["app"] != "client[]" {
				t.Fatalf("listed kinds: %v", kinds)
			}
		})
	}
}

// TestClientKeyValidation: a bad kind, origins on a server key and a
// malformed origin are refused with a 400 naming the field.
func TestClientKeyValidation(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	for _, c := range []struct{ body, field string }{
		{`{"name":"x","environment":"production","kind":"public"}`, "kind"},
		{`{"name":"x","environment":"production","origins":["https://a.example"]}`, "origins"},
		{`{"name":"x","environment":"production","kind":"client","origins":["https://a.example/path"]}`, "origins"},
		{`{"name":"x","environment":"production","kind":"client","origins":["ftp://a.example"]}`, "origins"},
		{`{"name":"x","environment":"production","kind":"client","origins":["*"]}`, "origins"},
	} {
		code, _, body := do(t, nil, "POST", s.URL()+"/api/v1/sdk-keys", "Bearer "+adminToken, strings.NewReader(c.body), "Content-Type", "application/json")
		if code != 400 || jsonError(t, c.body, body).Field != c.field {
			t.Errorf("%s: %d %s", c.body, code, body)
		}
	}
	keys, _ := apiclient.New(s.URL(), adminToken).SDKKeys(context.Background())
	if len(keys) != 0 {
		t.Fatalf("a refused request created keys: %+v", keys)
	}
}

// TestCORS: preflight and request from an allowed origin get the CORS
// headers (the origin echoed, never credentials); a disallowed origin gets
// none and a 403 before anything is processed; a server key, the management
// API, the export and the UI never get CORS.
func TestCORS(t *testing.T) {
	s, serverKey, clientKey, anyKey := clientSetup(t, "sqlite")
	cfg := s.URL() + "/api/flag-config/v1/config?apiKey="
	preflight := func(url, origin, method string) (int, http.Header) {
		code, h, _ := do(t, nil, "OPTIONS", url, "", nil, "Origin", origin, "Access-Control-Request-Method", method,
			"Access-Control-Request-Headers", "content-type, authorization")
		return code, h
	}
	noCORS := func(what string, h http.Header) {
		t.Helper()
		for k := range h {
			if strings.HasPrefix(k, "Access-Control-") {
				t.Errorf("%s: %s: %q", what, k, h[k])
			}
		}
	}

	// The configuration, from an allowed origin.
	code, h := preflight(cfg+clientKey.Secret+"&sdkName=js-client-sdk", pageOrigin, "GET")
	if code != 204 || h.Get("Access-Control-Allow-Origin") != pageOrigin || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") ||
		h.Get("Access-Control-Max-Age") == "" || h.Get("Vary") != "Origin" || h.Get("Access-Control-Allow-Headers") == "" ||
		h.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight: %d %v", code, h)
	}
	code, h, body := do(t, nil, "GET", cfg+clientKey.Secret+"&sdkName=js-client-sdk", "", nil, "Origin", pageOrigin)
	if code != 200 || h.Get("Access-Control-Allow-Origin") != pageOrigin || !strings.Contains(h.Get("Vary"), "Origin") || !strings.Contains(body, `"CLIENT"`) {
		t.Fatalf("GET: %d %v", code, h)
	}
	// A key for any origin echoes whichever origin asks.
	if _, h, _ := do(t, nil, "GET", cfg+anyKey.Secret, "", nil, "Origin", otherOrigin); h.Get("Access-Control-Allow-Origin") != otherOrigin {
		t.Fatalf("any-origin key: %v", h)
	}

	// A disallowed origin: no CORS headers, 403, on preflight and request.
	code, h = preflight(cfg+clientKey.Secret, otherOrigin, "GET")
	noCORS("disallowed preflight", h)
	if code != 403 {
		t.Fatalf("disallowed preflight: %d", code)
	}
	code, h, _ = do(t, nil, "GET", cfg+clientKey.Secret, "", nil, "Origin", otherOrigin)
	noCORS("disallowed GET", h)
	if code != 403 {
		t.Fatalf("disallowed GET: %d", code)
	}
	// A server key is for back ends: no CORS, though it still reads (a
	// server-side fetch may send an Origin).
	code, h, _ = do(t, nil, "GET", cfg+serverKey.Secret, "", nil, "Origin", pageOrigin)
	noCORS("server key", h)
	if code != 200 {
		t.Fatalf("server key with an Origin: %d", code)
	}
	code, h = preflight(cfg+serverKey.Secret, pageOrigin, "GET")
	noCORS("server key preflight", h)
	// A wrong key: no CORS either.
	_, h, _ = do(t, nil, "GET", cfg+"allot_client_nope", "", nil, "Origin", pageOrigin)
	noCORS("unknown key", h)

	// Event ingestion: the preflight carries no key, the POST does.
	ingestURL := s.URL() + "/api/v1/assignments"
	code, h = preflight(ingestURL, pageOrigin, "POST")
	if code != 204 || h.Get("Access-Control-Allow-Origin") != pageOrigin || h.Get("Access-Control-Allow-Methods") != "POST" {
		t.Fatalf("ingest preflight: %d %v", code, h)
	}
	events := []map[string]any{{"eventId": "browser-1", "featureFlag": "checkout-button", "allocation": "exp", "variation": "control",
		"subject": "user-1", "timestamp": "2026-05-01T10:00:00Z", "metaData": map[string]string{"sdkName": "js-client-sdk", "sdkVersion": "4.14.4"}}}
	post := func(origin string) (int, http.Header, string) {
		b, _ := json.Marshal(events)
		return do(t, nil, "POST", ingestURL, "Bearer "+clientKey.Secret, bytes.NewReader(b), "Origin", origin, "Content-Type", "application/json")
	}
	code, h, body = post(otherOrigin)
	noCORS("disallowed POST", h)
	if code != 403 {
		t.Fatalf("disallowed POST: %d %s", code, body)
	}
	code, h, body = post(pageOrigin)
	if code != 200 || !strings.Contains(body, `"accepted":1`) || h.Get("Access-Control-Allow-Origin") != pageOrigin {
		t.Fatalf("POST from the page: %d %s %v", code, body, h)
	}
	// A key for any origin in the URL does not carry, from another origin,
	// the limited key that ingestion reads from Authorization: preflight
	// and request name the any-origin key, the request the limited one.
	code, _ = preflight(ingestURL+"?apiKey="+anyKey.Secret, otherOrigin, "POST")
	if code != 204 {
		t.Fatalf("ingest preflight naming the any-origin key: %d", code)
	}
	b, _ := json.Marshal([]map[string]any{{"eventId": "smuggled-1", "featureFlag": "checkout-button", "allocation": "exp", "variation": "control",
		"subject": "user-2", "timestamp": "2026-05-01T10:00:00Z"}})
	code, h, body = do(t, nil, "POST", ingestURL+"?apiKey="+anyKey.Secret, "Bearer "+clientKey.Secret, bytes.NewReader(b),
		"Origin", otherOrigin, "Content-Type", "application/json")
	noCORS("limited key behind an any-origin key", h)
	if code != 403 {
		t.Fatalf("a limited key carried from a disallowed origin by an any-origin key in the URL: %d %s", code, body)
	}
	// A server key behind a client key gets no CORS headers either.
	code, h, body = do(t, nil, "POST", ingestURL+"?apiKey="+anyKey.Secret, "Bearer "+serverKey.Secret, bytes.NewReader(b),
		"Origin", pageOrigin, "Content-Type", "application/json")
	noCORS("server key behind a client key", h)

	// Never on the export, the management API or the UI.
	code, h = preflight(ingestURL+"?environment=production", pageOrigin, "GET")
	noCORS("export preflight", h)
	if code == 204 {
		t.Fatal("the export answered a cross-origin preflight")
	}
	for _, path := range []string{"/api/v1/flags", "/api/v1/sdk-keys", "/", "/healthz"} {
		_, h := preflight(s.URL()+path+"?apiKey="+anyKey.Secret, pageOrigin, "GET")
		noCORS("preflight "+path, h)
		_, h, _ = do(t, nil, "GET", s.URL()+path+"?apiKey="+anyKey.Secret, "Bearer "+adminToken, nil, "Origin", pageOrigin)
		noCORS("GET "+path, h)
	}
}
