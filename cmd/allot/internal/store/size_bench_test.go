package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// BenchmarkAssignmentTableSize stores ALLOT_BENCH_ROWS events (default
// 1,000,000; five per subject, two variations, over two days) through the
// writer's path (InsertAssignmentGroups, 10,000 per transaction, aggregates
// on), then reports what they take on disk per event: the table, each
// index, and the first-exposure table per subject. It runs once whatever
// -benchtime says; events/s is the rate of the whole load.
func BenchmarkAssignmentTableSize(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("ALLOT_BENCH_ROWS")); err == nil && v > 0 {
		n = v
	}
	for _, dialect := range storetest.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			dsn := storetest.DSN(b, dialect)
			ctx := context.Background()
			db, err := store.Open(ctx, dsn, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			t0 := time.Now().UTC().Add(-24 * time.Hour)
			const batch = 10_000
			rows := make([]table.Row, batch)
			start := time.Now()
			for done := 0; done < n; done += batch {
				for i := range rows {
					k := done + i
					rows[i] = table.Row{
						EventID: fmt.Sprintf("%08x-%08x-evt", k*2654435761%(1<<32), k), Environment: "production",
						Experiment: "checkout-exp", FeatureFlag: "checkout", Allocation: "exp", Variation: []string{"control", "treatment"}[k%2],
						Subject: fmt.Sprintf("user-%d", k/5), SubjectAttributes: []byte(`{"country":"US"}`),
						Timestamp: t0.Add(time.Duration(k) * 100 * time.Millisecond), SDKName: "go-allot", SDKVersion: "0.1.0", ReceivedAt: time.Now(),
					}
				}
				if _, err := db.InsertAssignmentGroups(ctx, [][]table.Row{rows}); err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			if err := db.FoldTouches(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
			sizes := map[string]int64{}
			raw, err := sql.Open(map[string]string{"sqlite": "sqlite", "postgres": "pgx"}[dialect], dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer raw.Close()
			var q string
			if dialect == "postgres" {
				if _, err := raw.Exec(`VACUUM ANALYZE assignments, first_exposures`); err != nil {
					b.Fatal(err)
				}
				// Each relation summed over its partitions.
				q = `SELECT r, COALESCE((SELECT SUM(pg_relation_size(relid)) FROM pg_partition_tree(r::regclass)), pg_relation_size(r::regclass))::BIGINT FROM unnest(ARRAY[
					'assignments', 'assignments_pkey', 'assignments_by_experiment', 'assignments_by_time', 'assignments_by_seq',
					'first_exposures', 'first_exposures_pkey']) AS r`
			} else {
				if _, err := raw.Exec(`VACUUM`); err != nil {
					b.Fatal(err)
				}
				q = `SELECT name, SUM(pgsize) FROM dbstat WHERE name LIKE 'assignments%' OR name LIKE 'sqlite_autoindex_assignments%' OR name LIKE '%first_exposures%' GROUP BY name`
			}
			res, err := raw.Query(q)
			if err != nil {
				b.Fatal(err)
			}
			for res.Next() {
				var name string
				var size int64
				if err := res.Scan(&name, &size); err != nil {
					b.Fatal(err)
				}
				sizes[name] = size
			}
			res.Close()
			for name, size := range sizes {
				per := float64(n)
				if name == "first_exposures" || name == "first_exposures_pkey" || name == "sqlite_autoindex_first_exposures_1" {
					per = float64(n / 5)
					b.ReportMetric(float64(size)/per, "B/subject:"+name)
					continue
				}
				b.ReportMetric(float64(size)/per, "B/event:"+name)
			}
			for i := 1; i < b.N; i++ { // one load is the measurement
			}
		})
	}
}
