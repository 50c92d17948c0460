package store_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// BenchmarkAssignmentIndexCost measures, on PostgreSQL, what the assignment
// table's indexes cost ingestion: the same COPY of 10,000 rows at a time
// (pgx CopyFrom, one connection, as BenchmarkIngestVsCopy's floor) into
// copies of the table with every index (primary key and the three
// secondary ones), with the primary key only, and with none; and into the
// partitioned table itself. Run with -count and compare within a run.
func BenchmarkAssignmentIndexCost(b *testing.B) {
	dsn := needPostgresB(b)
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, nil)
	if err != nil {
		b.Fatal(err)
	}
	db.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE a_none (LIKE assignments INCLUDING DEFAULTS)`,
		`CREATE TABLE a_pk (LIKE assignments INCLUDING DEFAULTS, PRIMARY KEY (event_id, timestamp))`,
		`CREATE TABLE a_all (LIKE assignments INCLUDING DEFAULTS, PRIMARY KEY (event_id, timestamp))`,
		`CREATE INDEX ON a_all (environment, feature_flag, timestamp)`,
		`CREATE INDEX ON a_all (timestamp)`,
		`CREATE INDEX ON a_all (seq)`,
		// The partitioned table needs today's partition (the writer would make it).
		`CREATE TABLE IF NOT EXISTS assignments_bench PARTITION OF assignments FOR VALUES FROM (` +
			strconv.FormatInt(time.Now().UTC().Truncate(24*time.Hour).UnixMicro(), 10) + `) TO (` +
			strconv.FormatInt(time.Now().UTC().Truncate(24*time.Hour).Add(24*time.Hour).UnixMicro(), 10) + `)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	cols := []string{"event_id", "environment", "experiment", "feature_flag", "allocation", "variation", "subject",
		"subject_attributes", "timestamp", "sdk_name", "sdk_version", "received_at", "seq"}
	const batch = 10_000
	ts := time.Now().UnixMicro()
	var seq int64
	for _, table := range []string{"a_none", "a_pk", "a_all", "assignments"} {
		b.Run("table="+table, func(b *testing.B) {
			rows := make([][]any, batch)
			for i := range rows {
				rows[i] = []any{"", "production", "checkout-exp", "checkout", "exp", "treatment", "", `{"country":"US"}`, ts, "go-allot", "0.1.0", ts, int64(0)}
			}
			for n := 0; b.Loop(); n++ {
				prefix := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
				_, err := conn.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromSlice(batch, func(i int) ([]any, error) {
					r := rows[i]
					id := prefix + strconv.Itoa(i)
					seq++
					r[0], r[6], r[12] = id, id, seq
					return r, nil
				}))
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func needPostgresB(b *testing.B) string {
	b.Helper()
	for _, d := range storetest.Dialects() {
		if d == "postgres" {
			return storetest.DSN(b, "postgres")
		}
	}
	b.Skip("PostgreSQL is off")
	return ""
}
