package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// BenchmarkSummary times the experiment summary of one allocation holding
// N rows (ALLOT_BENCH_ROWS, a comma-separated list; default 100000,1000000),
// seeded straight into SQLite (a recursive CTE, 2 variations, 30 days, 2
// events per subject), the aggregates then rebuilt: "aggregates" is what the
// API and the web UI run, "raw" the same summary computed from the rows (a
// time range forces it), the cost before migration 0006.
func BenchmarkSummary(b *testing.B) {
	sizes := []int{100_000, 1_000_000}
	if v := os.Getenv("ALLOT_BENCH_ROWS"); v != "" {
		sizes = nil
		for _, s := range splitComma(v) {
			n, err := strconv.Atoi(s)
			if err != nil {
				b.Fatal(err)
			}
			sizes = append(sizes, n)
		}
	}
	ctx := context.Background()
	for _, n := range sizes {
		path := storetest.DSN(b, "sqlite")
		db, err := store.Open(ctx, path, nil)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
		storetest.SeedExperiment(b, db, path, "production", "checkout", "exp", n, time.UnixMicro(t0).UTC(), 30)
		f := store.AssignmentFilter{Environment: "production", FeatureFlag: "checkout", Allocation: "exp"}
		for _, mode := range []string{"aggregates", "raw"} {
			g := f
			if mode == "raw" {
				g.From = time.UnixMicro(t0 - 1).UTC()
			}
			b.Run(fmt.Sprintf("rows=%d/%s", n, mode), func(b *testing.B) {
				for b.Loop() {
					s, err := db.SummarizeAssignments(ctx, g)
					if err != nil || s.Assignments != int64(n) {
						b.Fatalf("%+v %v", s.Assignments, err)
					}
				}
			})
		}
		db.Close()
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
