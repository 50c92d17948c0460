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

	"github.com/allot-dev/allot/internal/ingest"
	"github.com/allot-dev/allot/internal/store/storetest"
)

// BenchmarkIngest posts batches of 1,000 events (JSON lines, as the Go SDK
// sends them) through the handler into a real database, concurrently from
// 8 clients per core, and reports events stored per second. Issue target:
// at least 50,000 events/s into SQLite and into PostgreSQL.
func BenchmarkIngest(b *testing.B) {
	for _, dialect := range storetest.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			db := storetest.Open(b, dialect)
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
						fmt.Fprintf(&body, `{"eventId":"%d-%d","featureFlag":"checkout","allocation":"exp","variation":"treatment","subject":"user-%d-%d","subjectAttributes":{"country":"US"},"timestamp":"2026-05-01T12:00:00Z","metaData":{"sdkName":"go-allot","sdkVersion":"0.1.0"}}`+"\n", n, i, n, i)
					}
					req := httptest.NewRequest("POST", "/api/v1/assignments", &body)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
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
