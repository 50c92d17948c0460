package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// TestMigration0012OverStoredRows: a database whose aggregates were kept
// before migration 0012 (no holdout half) is upgraded in place: the
// migration recomputes them from the raw rows, halves included, equal to a
// rebuild. The pre-0012 state is made by hand from an upgraded file: the
// three tables back in their 0006 shape, filled by 0006's own backfill, and
// 0012 unrecorded (SQLite; on PostgreSQL the statements are the same).
func TestMigration0012OverStoredRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	d, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var rows []table.Row
	for i := range 300 {
		r := table.Row{EventID: fmt.Sprint("e", i), Environment: "production", FeatureFlag: "f", Allocation: "exp",
			Experiment: "f-exp", Variation: []string{"control", "treatment"}[i%2], Subject: fmt.Sprint("u", i%150),
			SubjectAttributes: []byte("{}"), Timestamp: now.Add(time.Duration(i) * time.Minute), ReceivedAt: now}
		if i%3 == 0 {
			r.Allocation, r.Experiment, r.Variation = "exp-q3", "f-exp-q3", "control"
			r.Holdout, r.HoldoutVariation = "q3", []string{"status_quo", "all_shipped"}[i%150%2]
		}
		rows = append(rows, r)
	}
	if _, err := d.InsertAssignments(ctx, rows); err != nil {
		t.Fatal(err)
	}
	want, err := d.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()

	old, err := os.ReadFile("migrations/sqlite/0006_aggregates.sql")
	if err != nil {
		t.Fatal(err)
	}
	text := string(old)
	create := text[strings.Index(text, "CREATE TABLE assignment_daily"):strings.Index(text, "CREATE TRIGGER")]
	backfill := text[strings.Index(text, "-- What is already stored"):]
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP TABLE assignment_daily`, `DROP TABLE assignment_multiple`, create,
		`DELETE FROM first_exposures`, `ALTER TABLE first_exposures DROP COLUMN first_holdout_variation`,
		`ALTER TABLE first_exposures DROP COLUMN holdout`, backfill,
		// 0015 (the first exposures' holdout) follows 0012 and reads what it wrote.
		`DELETE FROM schema_migrations WHERE name IN ('0012_holdout_aggregates.sql', '0015_first_exposure_holdouts.sql')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	var cols int
	if err := raw.QueryRow(`SELECT COUNT(*) FROM pragma_table_info('assignment_daily') WHERE name = 'holdout_variation'`).Scan(&cols); err != nil || cols != 0 {
		t.Fatalf("the pre-0012 shape was not restored: %d %v", cols, err)
	}
	raw.Close()

	d, err = store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Days, want.Days) || !reflect.DeepEqual(got.Multiple, want.Multiple) || !reflect.DeepEqual(got.FirstExposures, want.FirstExposures) {
		t.Fatalf("after the migration:\n%+v\nwant\n%+v", got.Days, want.Days)
	}
	sum, err := d.SummarizeAssignments(ctx, store.AssignmentFilter{Environment: "production", FeatureFlag: "f", Allocation: "exp-q3"})
	if err != nil || len(sum.HoldoutHalves) != 2 || sum.HoldoutHalves[0].Subjects+sum.HoldoutHalves[1].Subjects != sum.Subjects {
		t.Fatalf("summary after the migration: %+v %v", sum, err)
	}
}
