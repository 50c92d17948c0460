package ingest_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// BenchmarkIngestAggregates measures what the aggregates (kept by the insert
// path, store.updateAggregates) cost ingestion: events/s through the
// handler, as BenchmarkIngest, with them (on) and without (off). Subjects repeat (each
// request's 1,000 events go to 500 subjects seen before), so the upserts
// meet existing rows as in a running experiment. Interleave on and off in
// one shell loop over -count 1 and compare the ratio.
func BenchmarkIngestAggregates(b *testing.B) {
	for _, dialect := range storetest.Dialects() {
		for _, on := range []bool{true, false} {
			name := dialect + "/aggregates=off"
			if on {
				name = dialect + "/aggregates=on"
			}
			b.Run(name, func(b *testing.B) {
				dsn := storetest.DSN(b, dialect)
				db, err := store.Open(b.Context(), dsn, nil)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				if !on {
					db.DisableAggregates()
				}
				w := ingest.NewWriter(db, ingest.Options{})
				defer w.Close(b.Context())
				h := &ingest.Handler{
					Environment: func(string) (string, bool) { return "production", true },
					Writer:      w, Log: slog.New(slog.DiscardHandler), Now: time.Now,
				}
				const batch = 1000
				var seq atomic.Int64
				b.SetParallelism(8)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					var body bytes.Buffer
					for pb.Next() {
						body.Reset()
						n := seq.Add(1)
						for i := range batch {
							v := []string{"control", "treatment"}[i%2]
							fmt.Fprintf(&body, `{"eventId":"%d-%d","featureFlag":"checkout","allocation":"exp","variation":"%s","subject":"user-%d","subjectAttributes":{"country":"US"},"timestamp":"2026-05-01T12:00:%02dZ","metaData":{"sdkName":"go-allot","sdkVersion":"0.1.0"}}`+"\n",
								n, i, v, (n%50)*500+int64(i/2), n%60)
						}
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/assignments", &body))
						if rec.Code != http.StatusOK {
							b.Errorf("status %d: %s", rec.Code, rec.Body.String())
							return
						}
					}
				})
				b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}
