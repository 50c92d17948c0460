package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// allot tables rebuild restores aggregates that were lost or wrong, offline,
// from the raw rows: they come back equal to what ingestion had kept.
func TestTablesRebuild(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	d, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var rows []table.Row
	for i := range 50 {
		rows = append(rows, table.Row{EventID: fmt.Sprint("e", i), Environment: "production", FeatureFlag: "f", Allocation: "a",
			Experiment: "f-a", Variation: []string{"on", "off"}[i%3%2], Subject: fmt.Sprint("u", i%20), SubjectAttributes: []byte("{}"),
			Timestamp: ts.Add(time.Duration(i) * time.Hour), ReceivedAt: ts})
	}
	if _, err := d.InsertAssignments(ctx, rows); err != nil {
		t.Fatal(err)
	}
	before, err := d.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	// Damage the aggregates behind the store's back.
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM first_exposures WHERE subject < 'u5'; UPDATE assignment_daily SET assignments = 7`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if d, err := store.Open(ctx, path, nil); err != nil {
		t.Fatal(err)
	} else if n, _, err := d.CountAggregates(ctx); err != nil || n != 5 {
		t.Fatalf("after the damage: %d first exposures, %v; want 5", n, err)
	} else {
		d.Close()
	}

	code, out, errOut := runWith(nil, "tables", "rebuild", "--db", path)
	if code != 0 || !strings.Contains(out, "20 first exposures") {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	d, err = store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	after, err := d.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) || len(before.Multiple) == 0 {
		t.Fatalf("rebuilt aggregates differ:\n%+v\n%+v", before, after)
	}
	if code, _, _ := runWith(nil, "tables", "rebuild", "--db", filepath.Join(t.TempDir(), "none.db")); code == 0 {
		t.Fatal("rebuild of a missing database succeeded")
	}
}
