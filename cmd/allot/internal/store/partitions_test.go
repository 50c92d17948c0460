package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

func needPostgres(t *testing.T) string {
	t.Helper()
	if !slices.Contains(storetest.Dialects(), "postgres") {
		t.Skip("PostgreSQL is off")
	}
	return storetest.DSN(t, "postgres")
}

// partitionsOf lists the assignment table's partitions and their rows.
func partitionsOf(t *testing.T, dsn string) map[string]int64 {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'assignments'::regclass`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	got := map[string]int64{}
	for _, n := range names {
		var c int64
		if err := db.QueryRow(`SELECT COUNT(*) FROM ` + n).Scan(&c); err != nil {
			t.Fatal(err)
		}
		got[n] = c
	}
	return got
}

// TestAssignmentPartitions (PostgreSQL): the writer puts each day's events
// in that day's partition (made on demand, and today's and the next two
// ahead), events older than the window in the default partition; a retried
// batch adds nothing; retention drops the partitions of whole days before
// the cutoff's and deletes the default partition's old rows, keeps the
// cutoff's day, and the aggregates then equal a rebuild from what is left.
func TestAssignmentPartitions(t *testing.T) {
	dsn := needPostgres(t)
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	day := func(n int) time.Time { return today.AddDate(0, 0, n) }
	name := func(ts time.Time) string { return "assignments_" + ts.Format("20060102") }
	var rows []table.Row
	rows = append(rows, assignmentRows(30, "production", day(-3).Add(time.Hour))...)
	b := assignmentRows(20, "production", day(-1).Add(2*time.Hour))
	for i := range b {
		b[i].EventID = fmt.Sprintf("b-%d", i)
		b[i].Subject = fmt.Sprintf("new-%d", i)
		if i < 10 {
			b[i].Subject = rows[i].Subject // seen again: touches, and some change variation
			b[i].Variation = "treatment"
		}
	}
	rows = append(rows, b...)
	c := assignmentRows(5, "production", today.Add(time.Minute))
	for i := range c {
		c[i].EventID, c[i].Subject = fmt.Sprintf("c-%d", i), fmt.Sprintf("today-%d", i)
	}
	rows = append(rows, c...)
	old := assignmentRows(4, "production", time.Date(2020, 3, 1, 0, 0, 0, 0, time.UTC))
	for i := range old {
		old[i].EventID, old[i].Subject = fmt.Sprintf("old-%d", i), fmt.Sprintf("ancient-%d", i)
	}
	rows = append(rows, old...)
	if n, err := db.InsertAssignments(ctx, rows); err != nil || n != len(rows) {
		t.Fatalf("insert: %d, %v", n, err)
	}
	if n, err := db.InsertAssignments(ctx, rows); err != nil || n != 0 {
		t.Fatalf("retry: %d new, %v; want 0", n, err)
	}
	want := map[string]int64{
		"assignments_default": 4, name(day(-3)): 30, name(day(-1)): 20, name(today): 5,
		name(day(1)): 0, name(day(2)): 0, // made ahead
	}
	if got := partitionsOf(t, dsn); !reflect.DeepEqual(got, want) {
		t.Fatalf("partitions %v, want %v", got, want)
	}

	// Retention at noon yesterday: whole days before yesterday go.
	n, err := ingest.RetainOnce(ctx, db, day(-1).Add(12*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n < 4 { // the default partition's 4, plus an estimate of the dropped partition's
		t.Fatalf("retention reported %d rows", n)
	}
	delete(want, name(day(-3)))
	want["assignments_default"] = 0
	if got := partitionsOf(t, dsn); !reflect.DeepEqual(got, want) {
		t.Fatalf("after retention: partitions %v, want %v", got, want)
	}
	if c, _ := db.CountAssignments(ctx, store.AssignmentFilter{}); c != 25 {
		t.Fatalf("%d rows left, want 25 (yesterday's and today's)", c)
	}
	incremental, err := db.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RebuildAggregates(ctx); err != nil {
		t.Fatal(err)
	}
	rebuilt, err := db.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Subjects first seen on a dropped day are gone from the aggregates,
	// but a rebuild counts those seen again (the 10 of yesterday) as first
	// seen yesterday: compare the daily counts of assignments, which must
	// agree exactly, and the subjects that were new yesterday or today.
	assignmentsOf := func(a store.AggregateTables) map[string]int64 {
		m := map[string]int64{}
		for _, d := range a.Days {
			m[d.Day+"/"+d.Variation] += d.Assignments
		}
		return m
	}
	if got, want := assignmentsOf(incremental), assignmentsOf(rebuilt); !reflect.DeepEqual(got, want) {
		t.Fatalf("daily assignments after retention: incremental %v, rebuilt %v", got, want)
	}
	if len(rebuilt.FirstExposures) != 25 || len(incremental.FirstExposures) != 15 {
		t.Fatalf("first exposures after retention: incremental %d (want 15), rebuilt %d (want 25)", len(incremental.FirstExposures), len(rebuilt.FirstExposures))
	}
}

// TestPartitionMigration (PostgreSQL): migration 0014 moves the rows of an
// unpartitioned table (as migrations 0001-0013 left it) into the
// partitioned one, with their sequence numbers, and new rows continue the
// sequence.
func TestPartitionMigration(t *testing.T) {
	dsn := needPostgres(t)
	ctx := context.Background()
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	files, err := filepath.Glob("migrations/postgres/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if _, err := raw.Exec(`CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) >= "0014" {
			break
		}
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(string(body)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations VALUES ($1, 0)`, filepath.Base(f)); err != nil {
			t.Fatal(err)
		}
	}
	recent := time.Now().UTC().Add(-48 * time.Hour).UnixMicro()
	for i, ts := range []int64{recent, recent + 1, time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC).UnixMicro()} {
		if _, err := raw.Exec(`INSERT INTO assignments (event_id, environment, experiment, feature_flag, allocation, variation, subject, timestamp, received_at)
			VALUES ($1, 'production', 'x', 'checkout', 'exp', 'control', $2, $3, $3)`, fmt.Sprintf("m-%d", i), fmt.Sprintf("u-%d", i), ts); err != nil {
			t.Fatal(err)
		}
	}
	var seqBefore []int64
	if err := scanInts(raw, `SELECT seq FROM assignments ORDER BY event_id`, &seqBefore); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var seqAfter []int64
	if err := scanInts(raw, `SELECT seq FROM assignments ORDER BY event_id`, &seqAfter); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seqBefore, seqAfter) || len(seqAfter) != 3 {
		t.Fatalf("seq before %v, after %v", seqBefore, seqAfter)
	}
	parts := partitionsOf(t, dsn)
	recentDay := "assignments_" + time.UnixMicro(recent).UTC().Format("20060102")
	if parts[recentDay] != 2 || parts["assignments_default"] != 1 {
		t.Fatalf("partitions after the migration: %v", parts)
	}
	if _, err := db.InsertAssignments(ctx, assignmentRows(1, "production", time.Now())); err != nil {
		t.Fatal(err)
	}
	var top int64
	if err := raw.QueryRow(`SELECT MAX(seq) FROM assignments`).Scan(&top); err != nil || top <= slices.Max(seqAfter) {
		t.Fatalf("new row's seq %d (%v), want above %v", top, err, seqAfter)
	}
	var unpartitioned int
	raw.QueryRow(`SELECT COUNT(*) FROM pg_class WHERE relname = 'assignments_unpartitioned'`).Scan(&unpartitioned)
	if unpartitioned != 0 {
		t.Fatal("the old table is still there")
	}
}

func scanInts(db *sql.DB, q string, out *[]int64) error {
	rows, err := db.Query(q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return err
		}
		*out = append(*out, v)
	}
	return rows.Err()
}
