package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// discard is a reusable ResponseWriter, so the benchmark measures the
// handlers rather than a recorder.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(s int)           { d.status = s }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkMiddleware serves the SDK config endpoint (1,000 flags, as in
// internal/httpapi's BenchmarkConfig) through the root handler (recovery,
// request facts, body limit, metrics, request log) and through the bare
// mux, so the cost of the middleware is their difference in one run.
func BenchmarkMiddleware(b *testing.B) {
	path, secret := seedBench(b)
	s, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DB: path, PollInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(context.Background())
	p := s.cache.ForKey(secret)
	url := "/api/flag-config/v1/config?apiKey=" + secret + "&sdkName=node-server-sdk&sdkVersion=4.0.2"
	for _, c := range []struct {
		name   string
		etag   string
		status int
	}{{"NotModified", p.GzipETag, http.StatusNotModified}, {"Gzip", "", http.StatusOK}} {
		for _, h := range []struct {
			name string
			h    http.Handler
		}{{"Root", s.http.Handler}, {"Mux", s.mux}} {
			b.Run(c.name+"/"+h.name, func(b *testing.B) {
				req, _ := http.NewRequest("GET", url, nil)
				req.Header.Set("Accept-Encoding", "gzip")
				if c.etag != "" {
					req.Header.Set("If-None-Match", c.etag)
				}
				w := &discard{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					clear(w.h)
					w.status = 0
					h.h.ServeHTTP(w, req)
				}
				if w.status != c.status {
					b.Fatalf("status %d, want %d", w.status, c.status)
				}
			})
		}
	}
}

// seedBench makes a SQLite database of 1,000 flags (a quarter rollout
// each) in production and returns its path and an SDK key of it.
func seedBench(b *testing.B) (path, secret string) {
	path = filepath.Join(b.TempDir(), "bench.db")
	db, err := store.Open(context.Background(), path, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := core.WithActor(context.Background(), "bench")
	for i := range 1000 {
		key := fmt.Sprintf("flag-%04d", i)
		if _, err := storetest.OpsOn(db).CreateFlag(ctx, core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"control"`)}, {Key: "treatment", Value: json.RawMessage(`"treatment"`)}}}); err != nil {
			b.Fatal(err)
		}
		a := core.Allocation{Key: "ramp", Type: core.Rollout, Percent: 2500, Variation: "treatment"}
		if _, _, err := storetest.OpsOn(db).UpdateFlagSettings(ctx, core.FlagSettings{Flag: key, Environment: "production", Enabled: true, Allocations: []core.Allocation{a}}); err != nil {
			b.Fatal(err)
		}
	}
	k, err := storetest.OpsOn(db).CreateSDKKey(ctx, "production", "bench")
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	return path, k.Secret
}
