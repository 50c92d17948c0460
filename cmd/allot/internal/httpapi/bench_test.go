package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// BenchFlags is the size of the environment the config benchmarks serve.
const benchFlags = 1000

// seed fills production with n flags: experiments with rules, rollouts and
// targeted allocations, a third each.
func seed(tb testing.TB, db *store.DB, n int) string {
	ctx := core.WithActor(context.Background(), "bench")
	for i := range n {
		key := fmt.Sprintf("flag-%04d", i)
		_, err := storetest.OpsOn(db).CreateFlag(ctx, core.Flag{Key: key, VariationType: ufc.TypeString, Variations: []core.Variation{
			{Key: "control", Value: json.RawMessage(`"control"`)},
			{Key: "treatment", Value: json.RawMessage(`"treatment"`)},
		}})
		if err != nil {
			tb.Fatal(err)
		}
		rule := []core.Rule{{Conditions: []core.Condition{
			{Attribute: "country", Operator: "ONE_OF", Value: json.RawMessage(`["US","CA","FR"]`)},
			{Attribute: "version", Operator: "GTE", Value: json.RawMessage(`"2.1.0"`)},
		}}}
		var a core.Allocation
		switch i % 3 {
		case 0:
			a = core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: 2000, Rules: rule,
				Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}
		case 1:
			a = core.Allocation{Key: "ramp", Type: core.Rollout, Percent: 2500, Variation: "treatment"}
		default:
			a = core.Allocation{Key: "beta", Type: core.Targeted, Variation: "treatment", Rules: rule}
		}
		_, _, err = storetest.OpsOn(db).UpdateFlagSettings(ctx, core.FlagSettings{Flag: key, Environment: "production", Enabled: true, Allocations: []core.Allocation{a}})
		if err != nil {
			tb.Fatal(err)
		}
	}
	k, err := storetest.OpsOn(db).CreateSDKKey(ctx, "production", "bench")
	if err != nil {
		tb.Fatal(err)
	}
	return k.Secret
}

// discard is a reusable ResponseWriter, so the benchmarks measure the
// handler rather than a recorder.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header { return d.h }
func (d *discard) WriteHeader(s int)   { d.status = s }
func (d *discard) Write(p []byte) (int, error) {
	d.n += len(p)
	return len(p), nil
}

func benchServer(b *testing.B) (http.Handler, string, *publish.Published) {
	db := storetest.Open(b, "sqlite")
	key := seed(b, db, benchFlags)
	cache := publish.NewCache(db, nil)
	if err := cache.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	return mount(httpapi.New(db, cache, nil)), key, cache.ForKey(key)
}

func benchConfig(b *testing.B, h http.Handler, req *http.Request, want int) {
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
	}
	b.StopTimer()
	if w.status != want {
		b.Fatalf("status %d, want %d", w.status, want)
	}
}

func BenchmarkConfig(b *testing.B) {
	h, key, p := benchServer(b)
	url := "/api/flag-config/v1/config?apiKey=" + key + "&sdkName=node-server-sdk&sdkVersion=4.0.2"
	b.Logf("%d flags: %d bytes JSON, %d bytes gzip", p.Flags, len(p.Body), len(p.Gzip))

	b.Run("NotModified", func(b *testing.B) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		req.Header.Set("If-None-Match", p.GzipETag)
		benchConfig(b, h, req, http.StatusNotModified)
	})
	b.Run("Gzip", func(b *testing.B) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept-Encoding", "gzip, deflate, br")
		benchConfig(b, h, req, http.StatusOK)
	})
	b.Run("Identity", func(b *testing.B) {
		req, _ := http.NewRequest("GET", url, nil)
		benchConfig(b, h, req, http.StatusOK)
	})
	b.Run("BadKey", func(b *testing.B) {
		req, _ := http.NewRequest("GET", "/api/flag-config/v1/config?apiKey=allot_sdk_wrong", nil)
		benchConfig(b, h, req, http.StatusUnauthorized)
	})
}
