package sink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/sink"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

const benchRows = 200_000

// benchDB is a SQLite table of benchRows realistic rows: one experiment,
// two variations, 50,000 subjects with a few attributes, over 3 days.
func benchDB(b *testing.B) *store.DB {
	db := storetest.Open(b, "sqlite")
	batch := make([]table.Row, 0, 10_000)
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range benchRows {
		ts := start.Add(time.Duration(i) * 3 * 24 * time.Hour / benchRows)
		batch = append(batch, table.Row{
			EventID: fmt.Sprintf("%08x-4f1e-8c2a-%012x", i*7919, i), Environment: "production", Experiment: "checkout-button-2026-q4",
			FeatureFlag: "checkout-button", Allocation: "2026-q4", Variation: []string{"control", "treatment"}[i%2],
			Subject:           fmt.Sprintf("user-%06d", i%50_000),
			SubjectAttributes: json.RawMessage(fmt.Sprintf(`{"country":"%s","plan":"%s","app_version":"4.%d.0"}`, []string{"US", "DE", "FR", "JP"}[i%4], []string{"free", "pro"}[i%3%2], i%7)),
			Timestamp:         ts, SDKName: "allot-go", SDKVersion: "1.4.0", ReceivedAt: ts.Add(150 * time.Millisecond),
		})
		if len(batch) == cap(batch) {
			if _, err := db.InsertAssignments(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return db
}

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// BenchmarkSink seals the whole table into Parquet (Parquet) and, as the
// peer on the same rows, exports it as CSV through the same store reads
// (CSV): rows/s of each, and the bytes per row of both formats.
func BenchmarkSink(b *testing.B) {
	db := benchDB(b)
	ctx := context.Background()
	b.Run("Parquet", func(b *testing.B) {
		var bytes int64
		for b.Loop() {
			dir := b.TempDir()
			s, err := sink.New(db, sink.Config{Dir: dir, Rows: sink.MaxRows})
			if err != nil {
				b.Fatal(err)
			}
			if n, err := s.Seal(ctx); err != nil || n != benchRows {
				b.Fatalf("sealed %d rows: %v", n, err)
			}
			b.StopTimer()
			bytes = 0
			filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
				if err == nil && !e.IsDir() {
					fi, _ := e.Info()
					bytes += fi.Size()
				}
				return err
			})
			os.RemoveAll(dir)
			b.StartTimer()
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(bytes)/benchRows, "bytes/row")
	})
	b.Run("CSV", func(b *testing.B) {
		var bytes int64
		for b.Loop() {
			var cw countWriter
			w := table.NewWriter(&cw, table.CSV)
			if err := db.AssignmentPages(ctx, store.AssignmentFilter{}, func(page []table.Row) error { return w.Write(ctx, page) }); err != nil {
				b.Fatal(err)
			}
			if err := w.Close(ctx); err != nil {
				b.Fatal(err)
			}
			bytes = cw.n
		}
		b.ReportMetric(float64(benchRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		b.ReportMetric(float64(bytes)/benchRows, "bytes/row")
	})
}
