package store_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// TestAggregatesHoldoutHalfMovesWithFirstExposure: a subject's events can
// carry different holdout halves (an experiment put into a holdout, or taken
// out of one, keeps its allocation). When an earlier event arrives late, the
// first exposure moves and its half with it: the stored row's
// first_holdout_variation must follow, or the next move takes the subject
// out of the wrong half's daily and multiple-variation counts. Four batches
// per subject: a new subject (on PostgreSQL the next batch then tries the
// all-new COPY and falls back), two earlier events in other halves (changed
// rows), and a later one (a touch only).
func TestAggregatesHoldoutHalfMovesWithFirstExposure(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		const subjects = 30
		steps := []struct {
			at        time.Time
			variation string
			half      string
		}{
			{day.Add(2*24*time.Hour + time.Hour), "control", ""},
			{day.Add(24*time.Hour + time.Hour), "treatment", "status_quo"},
			{day.Add(time.Hour), "control", "all_shipped"},
			{day.Add(3*24*time.Hour + time.Hour), "treatment", ""},
		}
		for i, s := range steps {
			var batch []table.Row
			for u := range subjects {
				r := table.Row{EventID: fmt.Sprintf("e%d-%d", i, u), Environment: "production", FeatureFlag: "checkout",
					Allocation: "exp", Experiment: "checkout-exp", Variation: s.variation, Subject: fmt.Sprint("user-", u),
					SubjectAttributes: []byte(`{}`), Timestamp: s.at, ReceivedAt: s.at}
				if s.half != "" {
					r.Holdout, r.HoldoutVariation = "q3", s.half
				}
				batch = append(batch, r)
			}
			if _, err := db.InsertAssignments(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.Aggregates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Every subject's first exposure is step 2's (control, all_shipped,
		// on the first day), and it was seen in both variations.
		if want := map[string]int64{"production/checkout/exp/control/all_shipped": subjects}; !reflect.DeepEqual(got.Multiple, want) {
			t.Fatalf("assignment_multiple %v, want %v", got.Multiple, want)
		}
		for _, d := range got.Days {
			if d.FirstExposures != 0 && (d.Day != "2026-05-01" || d.HoldoutVariation != "all_shipped" || d.FirstExposures != subjects) {
				t.Fatalf("first exposures counted in %+v", d)
			}
		}
		for _, f := range got.FirstExposures {
			if f.Exposures != int64(len(steps)) || !f.MultipleVariations || f.FirstVariation != "control" {
				t.Fatalf("first exposure %+v", f)
			}
		}
		if err := db.RebuildAggregates(ctx); err != nil {
			t.Fatal(err)
		}
		rebuilt, err := db.Aggregates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, rebuilt) {
			t.Fatalf("incremental %+v\nrebuilt     %+v", got, rebuilt)
		}
	})
}
