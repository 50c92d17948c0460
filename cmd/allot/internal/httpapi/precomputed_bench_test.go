package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// BenchmarkPrecomputedLoopback is a Go load client on loopback against an
// environment of 200 flags: 16 concurrent clients with keep-alive, each
// request a new subject with attributes. It reports requests/s and the
// p99 latency. The floor, interleaved in the same run, is the SDK
// configuration GET of the same environment (bytes served from memory).
func BenchmarkPrecomputedLoopback(b *testing.B) {
	url, key := precomputedServer(b, 200, httpapi.WithPrecomputedRate(0, 0))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	run := func(b *testing.B, req func(i int64) (*http.Request, error)) {
		var mu sync.Mutex
		var lat []time.Duration
		b.SetParallelism(8)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				r, err := req(seq.Add(1))
				if err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				resp, err := client.Do(r)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mine = append(mine, time.Since(t0))
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		elapsed := time.Since(start)
		b.StopTimer()
		if len(lat) == 0 {
			return
		}
		slices.Sort(lat)
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
	b.Run("precomputed", func(b *testing.B) {
		run(b, func(i int64) (*http.Request, error) {
			body := fmt.Sprintf(`{"subject_key":"user-%d","subject_attributes":{"numericAttributes":{"age":%d},"categoricalAttributes":{"country":%q,"version":"2.2.0"}}}`,
				i, i%80, []string{"US", "FR", "DE"}[i%3])
			r, err := http.NewRequest("POST", url+"/assignments?apiKey="+key+"&sdkName=js-client-sdk&sdkVersion=4.14.4", strings.NewReader(body))
			if err == nil {
				r.Header.Set("Content-Type", "application/json")
			}
			return r, err
		})
	})
	b.Run("config-floor", func(b *testing.B) {
		run(b, func(int64) (*http.Request, error) {
			return http.NewRequest("GET", url+"/api/flag-config/v1/config?apiKey="+key+"&sdkName=go", nil)
		})
	})
}

// BenchmarkPrecomputedHandler is the handler's own cost for one subject
// over 200 flags, in process (no network), next to the configuration GET.
func BenchmarkPrecomputedHandler(b *testing.B) {
	db := storetest.Open(b, "sqlite")
	key := seed(b, db, 200)
	cache := publish.NewCache(db, nil)
	if err := cache.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	h := mount(httpapi.New(db, cache, nil, httpapi.WithPrecomputedRate(0, 0)))
	body := []byte(`{"subject_key":"user-42","subject_attributes":{"numericAttributes":{"age":30},"categoricalAttributes":{"country":"US","version":"2.2.0"}}}`)
	b.Run("precomputed", func(b *testing.B) {
		w := &discard{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			r := httptest.NewRequest("POST", "/assignments?apiKey="+key, bytes.NewReader(body))
			h.ServeHTTP(w, r)
			if w.status != 200 {
				b.Fatal(w.status)
			}
		}
	})
	b.Run("config-floor", func(b *testing.B) {
		w := &discard{h: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			clear(w.h)
			h.ServeHTTP(w, httptest.NewRequest("GET", "/api/flag-config/v1/config?apiKey="+key, nil))
			if w.status != 200 {
				b.Fatal(w.status)
			}
		}
	})
}
