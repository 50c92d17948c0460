package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

func openSQLite(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "allot.db")
	db, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func rowsAt(n int, prefix string, ts time.Time) []table.Row {
	rows := make([]table.Row, n)
	for i := range rows {
		rows[i] = table.Row{EventID: fmt.Sprintf("%s-%06d", prefix, i), Environment: "production", Experiment: "f-a",
			FeatureFlag: "f", Allocation: "a", Variation: "v", Subject: fmt.Sprint("user-", i),
			Timestamp: ts.Add(time.Duration(i/3) * time.Second), ReceivedAt: ts} // three rows per timestamp
	}
	return rows
}

// TestAssignmentsSyncFull: the assignment writer's commits are fsynced on
// SQLite (synchronous=FULL, 2), so that a 200 from ingestion survives a
// power loss; the connection goes back to NORMAL (1) for other writes.
func TestAssignmentsSyncFull(t *testing.T) {
	db, _ := openSQLite(t)
	ctx := context.Background()
	mode := -1
	testHookBeforeCommit = func(tx *sql.Tx) {
		if err := tx.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookBeforeCommit = nil }()
	if _, err := db.InsertAssignments(ctx, rowsAt(3, "e", time.Now())); err != nil {
		t.Fatal(err)
	}
	if mode != 2 {
		t.Fatalf("synchronous=%d during the assignment commit, want 2 (FULL)", mode)
	}
	// One connection only, so the next statement uses the same one.
	db.db.SetMaxOpenConns(1)
	defer db.db.SetMaxOpenConns(4)
	if _, err := db.InsertAssignments(ctx, rowsAt(3, "f", time.Now())); err != nil {
		t.Fatal(err)
	}
	if err := db.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&mode); err != nil || mode != 1 {
		t.Fatalf("synchronous=%d after the commit (%v), want 1 (NORMAL) restored", mode, err)
	}
}

// TestAssignmentsPages: paging returns every row once, in order, with many
// rows sharing a timestamp across page boundaries.
func TestAssignmentsPages(t *testing.T) {
	db, _ := openSQLite(t)
	ctx := context.Background()
	defer func(n int) { pageRows = n }(pageRows)
	pageRows = 7
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.InsertAssignments(ctx, rowsAt(100, "e", t0)); err != nil {
		t.Fatal(err)
	}
	pages, n := 0, 0
	err := db.AssignmentPages(ctx, AssignmentFilter{From: t0.Add(time.Second)}, func(page []table.Row) error {
		pages++
		for _, r := range page {
			if want := fmt.Sprintf("e-%06d", n+3); r.EventID != want {
				return fmt.Errorf("row %d is %s, want %s", n, r.EventID, want)
			}
			n++
		}
		return nil
	})
	if err != nil || n != 97 || pages != 14 {
		t.Fatalf("%d rows in %d pages, %v; want 97 in 14", n, pages, err)
	}
}

// TestStalledExportDoesNotPinWAL: while the consumer of an export stalls
// (a slow HTTP client), no read snapshot is held, so a checkpoint completes
// and the WAL does not grow without bound under ingestion.
func TestStalledExportDoesNotPinWAL(t *testing.T) {
	db, path := openSQLite(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := db.InsertAssignments(ctx, rowsAt(5000, "e", t0)); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(200)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	seen := 0
	err = db.Assignments(ctx, AssignmentFilter{}, func(r *table.Row) error {
		if seen++; seen != 1 {
			return nil
		}
		// Stalled on the first row: ingestion goes on, then a checkpoint.
		if _, err := db.InsertAssignments(ctx, rowsAt(500, "late", t0.Add(time.Hour))); err != nil {
			return err
		}
		var busy, log, done int
		if err := other.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &log, &done); err != nil {
			return err
		}
		if busy != 0 || log != 0 {
			return fmt.Errorf("checkpoint blocked by the export: busy=%d, %d WAL frames left", busy, log)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 5000 {
		t.Fatalf("export saw %d rows", seen)
	}
}

// BenchmarkAssignmentSync compares the assignment writer's commits on
// SQLite with synchronous=FULL (what ships) and NORMAL (before issue 10.8),
// batches of 1,000 events; run with -count so the two interleave.
func BenchmarkAssignmentSync(b *testing.B) {
	defer func() { assignmentSync = "FULL" }()
	for _, mode := range []string{"NORMAL", "FULL"} {
		b.Run(mode, func(b *testing.B) {
			assignmentSync = mode
			db, err := Open(context.Background(), filepath.Join(b.TempDir(), "allot.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			batch := rowsAt(1000, "x", time.Now())
			for i := 0; b.Loop(); i++ {
				for j := range batch {
					batch[j].EventID = fmt.Sprintf("b%d-%d", i, j)
				}
				if _, err := db.InsertAssignments(context.Background(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
		})
	}
}
