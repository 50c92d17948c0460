package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

func seqRows(prefix string, n int, ts time.Time) []table.Row {
	rows := make([]table.Row, n)
	for i := range rows {
		rows[i] = table.Row{EventID: fmt.Sprintf("%s-%d", prefix, i), Environment: "production", Experiment: "f-a", FeatureFlag: "f",
			Allocation: "a", Variation: "v", Subject: "s", SubjectAttributes: []byte("{}"), Timestamp: ts, ReceivedAt: ts}
	}
	return rows
}

// Retention deleting every row must not let new rows take sequence
// numbers a sink has already sealed past: they would never be sealed.
func TestSequenceNotReusedAfterRetention(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		if _, err := db.InsertAssignments(ctx, seqRows("old", 10, old)); err != nil {
			t.Fatal(err)
		}
		top, err := db.AssignmentHorizon(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SetSinkSealed(ctx, "file:///x", top); err != nil {
			t.Fatal(err)
		}
		if _, err := db.DeleteAssignmentsBefore(ctx, time.Now(), 100); err != nil {
			t.Fatal(err)
		}
		if _, err := db.InsertAssignments(ctx, seqRows("new", 3, time.Now())); err != nil {
			t.Fatal(err)
		}
		sealed, err := db.SinkSealed(ctx, "file:///x")
		if err != nil || sealed != top {
			t.Fatalf("sealed %d, %v; want %d", sealed, err, top)
		}
		var got []string
		err = db.AssignmentSeqPages(ctx, sealed, 1<<62, 0, func(seqs []int64, rows []table.Row) error {
			for _, r := range rows {
				got = append(got, r.EventID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 {
			t.Fatalf("rows after the sealed sequence: %v, want the 3 new ones", got)
		}
	})
}
