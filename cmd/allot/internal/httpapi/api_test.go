package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	url  string
	api  *apiclient.Client
	db   *store.DB
	logs *syncBuffer
}

func setup(t *testing.T, dialect string) *fixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, dialect)
	token, err := core.New(db, core.Options{}).Bootstrap(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cache := publish.NewCache(db, log)
	if err := cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mount(httpapi.New(db, cache, log)))
	t.Cleanup(srv.Close)
	return &fixture{url: srv.URL, api: apiclient.New(srv.URL, token), db: db, logs: logs}
}

func forEachDB(t *testing.T, fn func(t *testing.T, f *fixture)) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, setup(t, d))
		})
	}
}

func colorFlag() core.Flag {
	return core.Flag{Key: "color", VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"grey"`)},
		{Key: "red", Value: json.RawMessage(`"red"`)},
	}}
}

func apiError(t *testing.T, err error, status int, field string) {
	t.Helper()
	e, ok := err.(*apiclient.Error)
	if !ok {
		t.Fatalf("error %v (%T), want an API error %d", err, err, status)
	}
	if e.Status != status || e.Field != field {
		t.Fatalf("error %+v, want status %d field %q", e, status, field)
	}
}

func get(t *testing.T, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// A bare transport: no transparent gzip, so the test sees the encoding.
	resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAuth(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		_, err := apiclient.New(f.url, "").Flags(ctx)
		apiError(t, err, 401, "")
		_, err = apiclient.New(f.url, "allot_admin_nope").Flags(ctx)
		apiError(t, err, 401, "")
		tok, err := f.api.CreateAdminToken(ctx, "ci")
		if err != nil || !strings.HasPrefix(tok.Secret, core.AdminTokenPrefix) {
			t.Fatalf("%+v %v", tok, err)
		}
		other := apiclient.New(f.url, tok.Secret)
		if _, err := other.Flags(ctx); err != nil {
			t.Fatal(err)
		}
		if err := f.api.RevokeAdminToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		_, err = other.Flags(ctx)
		apiError(t, err, 401, "")
		list, _ := f.api.AdminTokens(ctx)
		for _, l := range list {
			if l.Secret != "" {
				t.Fatal("listing shows a secret")
			}
		}
		if strings.Contains(f.logs.String(), tok.Secret) {
			t.Fatal("a token reached the logs")
		}
	})
}

func TestValidationNamesTheField(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		bad := colorFlag()
		bad.VariationType = "COLOR"
		_, err := f.api.CreateFlag(ctx, bad)
		apiError(t, err, 400, "variationType")
		if _, err := f.api.CreateFlag(ctx, colorFlag()); err != nil {
			t.Fatal(err)
		}
		_, err = f.api.CreateFlag(ctx, colorFlag())
		apiError(t, err, 409, "")
		_, err = f.api.AddAllocation(ctx, "production", "color", 0, core.Allocation{Key: "e", Type: core.Experiment, Traffic: 1000,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "red", Weight: 4000}}})
		apiError(t, err, 400, "allocations[0].weights")
		_, err = f.api.Settings(ctx, "staging", "color")
		apiError(t, err, 404, "")

		// A body field of the wrong type names the field too.
		req, _ := http.NewRequest("POST", f.url+"/api/v1/flags", strings.NewReader(`{"key": 5}`))
		req.Header.Set("Authorization", "Bearer "+f.api.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb httpapi.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		if resp.StatusCode != 400 || eb.Error.Field != "key" {
			t.Fatalf("%d %+v", resp.StatusCode, eb)
		}
	})
}

func TestOptimisticConcurrency(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		fl, _ := f.api.CreateFlag(ctx, colorFlag())
		s, _ := f.api.Settings(ctx, "production", "color")
		// Alice and Bob both read version 0.
		if _, err := f.api.PutSettings(ctx, core.FlagSettings{Flag: "color", Environment: "production", Enabled: true, Version: s.Version}); err != nil {
			t.Fatal(err)
		}
		_, err := f.api.PutSettings(ctx, core.FlagSettings{Flag: "color", Environment: "production", Enabled: false, Version: s.Version})
		apiError(t, err, 409, "")
		if !apiclient.IsConflict(err) {
			t.Fatal("IsConflict")
		}
		fl.Description = "one"
		if _, err := f.api.UpdateFlag(ctx, fl); err != nil {
			t.Fatal(err)
		}
		fl.Description = "two"
		_, err = f.api.UpdateFlag(ctx, fl)
		apiError(t, err, 409, "")
		// A write without any version is refused.
		req, _ := http.NewRequest("PUT", f.url+"/api/v1/environments/production/flags/color", strings.NewReader(`{"enabled":true}`))
		req.Header.Set("Authorization", "Bearer "+f.api.Token)
		resp, _ := http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("unversioned write: %d", resp.StatusCode)
		}
	})
}

func TestSDKEndpoint(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.api.CreateFlag(ctx, colorFlag())
		s, err := f.api.AddAllocation(ctx, "production", "color", 0, core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: 5000,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "red", Weight: 5000}}})
		if err != nil {
			t.Fatal(err)
		}
		s.Enabled = true
		if _, err := f.api.PutSettings(ctx, s.FlagSettings); err != nil {
			t.Fatal(err)
		}
		key, err := f.api.CreateSDKKey(ctx, "production", "web")
		if err != nil {
			t.Fatal(err)
		}
		cfgURL := f.url + "/api/flag-config/v1/config?apiKey=" + key.Secret + "&sdkName=go&sdkVersion=1"

		resp := get(t, cfgURL, nil)
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("%d %v", resp.StatusCode, resp.Header)
		}
		if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "public") || !strings.Contains(cc, "max-age=") {
			t.Fatalf("Cache-Control %q", cc)
		}
		snap, err := eval.Load(body)
		if err != nil || snap.Environment != "production" || snap.Flag("color") == nil || snap.Flag("color").Err != nil {
			t.Fatalf("served document: %v", err)
		}
		etag := resp.Header.Get("ETag")

		resp = get(t, cfgURL, map[string]string{"If-None-Match": etag})
		if resp.StatusCode != 304 {
			t.Fatalf("If-None-Match: %d", resp.StatusCode)
		}
		resp = get(t, cfgURL, map[string]string{"Accept-Encoding": "gzip, deflate"})
		if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding") {
			t.Fatalf("gzip: %d %v", resp.StatusCode, resp.Header)
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		unz, _ := io.ReadAll(zr)
		if !bytes.Equal(unz, body) {
			t.Fatal("gzip body differs")
		}
		gzTag := resp.Header.Get("ETag")
		if gzTag == etag {
			t.Fatal("both encodings share an ETag")
		}
		if resp := get(t, cfgURL, map[string]string{"Accept-Encoding": "gzip", "If-None-Match": gzTag}); resp.StatusCode != 304 {
			t.Fatalf("gzip If-None-Match: %d", resp.StatusCode)
		}

		// The preview endpoint is the engine on the same document.
		for _, subj := range []string{"alice", "bob", "carol", "dave"} {
			want := snap.Evaluate("color", subj, nil, ufc.TypeString, time.Now())
			got, err := f.api.Evaluate(ctx, "production", httpapi.EvaluateRequest{Flag: "color", Subject: subj})
			if err != nil {
				t.Fatal(err)
			}
			if got.Code != want.Code.String() || got.Variation != want.VariationKey() || got.Allocation != want.AllocationKey() {
				t.Fatalf("%s: preview %+v, engine %v %s", subj, got, want.Code, want.VariationKey())
			}
		}

		// Bandits: an empty document.
		resp = get(t, f.url+"/api/flag-config/v1/bandits?apiKey="+key.Secret, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != `{"bandits":{}}` {
			t.Fatalf("bandits: %d %s", resp.StatusCode, b)
		}

		// A change is served at once, with a new ETag.
		if _, err := f.api.PatchAllocation(ctx, "production", "color", "exp", 2, httpapi.AllocationPatch{Traffic: ptr[core.Percent](8000)}); err != nil {
			t.Fatal(err)
		}
		if resp := get(t, cfgURL, map[string]string{"If-None-Match": etag}); resp.StatusCode != 200 || resp.Header.Get("ETag") == etag {
			t.Fatalf("after a change: %d %s", resp.StatusCode, resp.Header.Get("ETag"))
		}

		// Bad and revoked keys: 401, plain text.
		for _, u := range []string{
			f.url + "/api/flag-config/v1/config",
			f.url + "/api/flag-config/v1/config?apiKey=allot_sdk_wrong",
			f.url + "/api/flag-config/v1/bandits?apiKey=",
		} {
			resp := get(t, u, nil)
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") || json.Valid(b) {
				t.Fatalf("%s: %d %q %s", u, resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
		}
		if err := f.api.RevokeSDKKey(ctx, key.ID); err != nil {
			t.Fatal(err)
		}
		if resp := get(t, cfgURL, nil); resp.StatusCode != 401 {
			t.Fatalf("revoked key: %d", resp.StatusCode)
		}
		if strings.Contains(f.logs.String(), key.Secret) {
			t.Fatal("an SDK key reached the logs")
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestWeightChangeWarnsOfReRandomization(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		f.api.CreateFlag(ctx, colorFlag())
		s, _ := f.api.AddAllocation(ctx, "production", "color", 0, core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: 5000,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "red", Weight: 5000}}})
		s2, err := f.api.PatchAllocation(ctx, "production", "color", "exp", s.Version, httpapi.AllocationPatch{Traffic: ptr[core.Percent](9000)})
		if err != nil || len(s2.Warnings) != 0 {
			t.Fatalf("raising traffic: %v %v", s2.Warnings, err)
		}
		if s2.Allocations[0].TrafficSalt != s.Allocations[0].TrafficSalt {
			t.Fatal("salt changed")
		}
		s3, err := f.api.PatchAllocation(ctx, "production", "color", "exp", s2.Version, httpapi.AllocationPatch{
			Weights: &[]core.Weight{{Variation: "control", Weight: 2000}, {Variation: "red", Weight: 8000}}})
		if err != nil || len(s3.Warnings) != 1 || !strings.Contains(s3.Warnings[0], "re-randomizes") {
			t.Fatalf("weights: %v %v", s3.Warnings, err)
		}
	})
}

func TestAuditAndEnvironments(t *testing.T) {
	forEachDB(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		if _, err := f.api.CreateEnvironment(ctx, "staging"); err != nil {
			t.Fatal(err)
		}
		envs, _ := f.api.Environments(ctx)
		if len(envs) != 2 {
			t.Fatalf("%+v", envs)
		}
		f.api.CreateFlag(ctx, colorFlag())
		entries, err := f.api.Audit(ctx, 10, 0)
		if err != nil || len(entries) < 2 {
			t.Fatalf("%+v %v", entries, err)
		}
		if entries[0].Entity != "flag" || !strings.HasPrefix(entries[0].Actor, "admin@localhost (token initial") || entries[0].After == nil {
			t.Fatalf("%+v", entries[0])
		}
		// The new environment is served to its own keys.
		k, _ := f.api.CreateSDKKey(ctx, "staging", "s")
		resp := get(t, f.url+"/api/flag-config/v1/config?apiKey="+k.Secret, nil)
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `"environment":{"name":"staging"}`) {
			t.Fatalf("%s", b)
		}
	})
}

// mount serves the API's routes on a mux of their own; the server's root
// router (internal/server) adds the middleware, health and metrics.
func mount(api *httpapi.Server) http.Handler {
	m := http.NewServeMux()
	api.Register(m)
	return m
}
