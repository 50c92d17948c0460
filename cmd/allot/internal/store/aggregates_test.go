package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// TestAggregatesRebuildEqualsIncremental is the fault run: events arrive in
// shuffled batches, out of time order, with retried batches and duplicate
// event ids (within a batch and across batches); the aggregates the insert path
// kept must equal those rebuilt from the raw table, and the summary from
// them must equal the one computed from the raw rows.
func TestAggregatesRebuildEqualsIncremental(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		start := time.Date(2026, 5, 1, 20, 0, 0, 0, time.UTC)
		var events []table.Row
		for i := range 3000 {
			v := []string{"control", "treatment"}[rng.IntN(2)]
			alloc := []string{"exp", "exp", "other", "exp-q3"}[rng.IntN(4)]
			ts := start.Add(time.Duration(rng.IntN(3*24*3600)) * time.Second)
			if i%7 == 0 {
				ts = start // ties on the first-seen time: the event id decides
			}
			subject := rng.IntN(400)
			row := table.Row{
				EventID: fmt.Sprintf("ev-%05d", i), Environment: "production", FeatureFlag: "checkout", Allocation: alloc,
				Experiment: "checkout-" + alloc, Variation: v, Subject: fmt.Sprintf("user-%d", subject),
				SubjectAttributes: []byte(`{}`), Timestamp: ts, ReceivedAt: ts,
			}
			if alloc == "exp-q3" { // a holdout allocation: each subject in one half
				row.Holdout, row.HoldoutVariation = "q3", []string{"status_quo", "all_shipped"}[subject%2]
			}
			events = append(events, row)
		}
		byID := map[string]table.Row{}
		for _, r := range events {
			byID[r.EventID] = r
		}
		rng.Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		inserted := 0
		for start := 0; start < len(events); {
			n := 1 + rng.IntN(200)
			batch := append([]table.Row(nil), events[start:min(start+n, len(events))]...)
			if rng.IntN(3) == 0 && start > 0 { // a retry of an earlier slice rides along
				from := rng.IntN(start)
				batch = append(batch, events[from:min(from+50, start)]...)
			}
			if len(batch) > 1 { // a duplicate inside the batch
				batch = append(batch, batch[0])
			}
			groups := [][]table.Row{batch}
			if rng.IntN(2) == 0 { // several requests in one transaction
				h := len(batch) / 2
				groups = [][]table.Row{batch[:h], batch[h:]}
			}
			counts, err := db.InsertAssignmentGroups(ctx, groups)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range counts {
				inserted += c
			}
			start += n
		}
		if inserted != len(events) {
			t.Fatalf("inserted %d, want %d", inserted, len(events))
		}
		agg1, err := db.Aggregates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fe1, days1 := agg1.FirstExposures, agg1.Days
		if len(fe1) == 0 || len(days1) == 0 || len(agg1.Multiple) == 0 {
			t.Fatalf("no aggregates: %d subjects, %d days, %d multiple", len(fe1), len(days1), len(agg1.Multiple))
		}
		// The holdout columns are the first event's, as in its raw row.
		inHoldout := 0
		for _, f := range fe1 {
			r := byID[f.FirstEventID]
			if f.Holdout != r.Holdout || f.HoldoutVariation != r.HoldoutVariation || f.FirstVariation != r.Variation {
				t.Fatalf("first exposure %+v, its event %+v", f, r)
			}
			if f.Holdout != "" {
				inHoldout++
			}
		}
		if inHoldout == 0 || inHoldout == len(fe1) {
			t.Fatalf("%d of %d first exposures in a holdout: the run does not test the holdout columns", inHoldout, len(fe1))
		}
		for _, alloc := range []string{"exp", "other", "exp-q3"} {
			f := store.AssignmentFilter{Environment: "production", FeatureFlag: "checkout", Allocation: alloc}
			fromAgg, err := db.SummarizeAssignments(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			// A far time range takes the raw path: same rows, so same answer.
			f.From = start.Add(-time.Hour)
			raw, err := db.SummarizeAssignments(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			if fromAgg.Assignments != raw.Assignments || fromAgg.Subjects != raw.Subjects || fromAgg.MultipleVariations == 0 ||
				fromAgg.MultipleVariations != raw.MultipleVariations || !reflect.DeepEqual(fromAgg.Variations, raw.Variations) {
				t.Fatalf("%s: from aggregates %+v, from raw rows %+v", alloc, fromAgg, raw)
			}
			// Per holdout half, the same; only the holdout allocation has halves.
			if !reflect.DeepEqual(fromAgg.HoldoutHalves, raw.HoldoutHalves) || (alloc == "exp-q3") != (len(fromAgg.HoldoutHalves) == 2) {
				t.Fatalf("%s: holdout halves from aggregates %+v, from raw rows %+v", alloc, fromAgg.HoldoutHalves, raw.HoldoutHalves)
			}
			if alloc == "exp-q3" {
				var subjects, assignments, multiple int64
				for _, h := range fromAgg.HoldoutHalves {
					subjects, assignments, multiple = subjects+h.Subjects, assignments+h.Assignments, multiple+h.MultipleVariations
				}
				if subjects != fromAgg.Subjects || assignments != fromAgg.Assignments || multiple != fromAgg.MultipleVariations ||
					fromAgg.HoldoutHalves[0].HoldoutVariation != "status_quo" {
					t.Fatalf("halves do not add up to the whole: %+v of %+v", fromAgg.HoldoutHalves, fromAgg)
				}
			}
		}
		if err := db.RebuildAggregates(ctx); err != nil {
			t.Fatal(err)
		}
		agg2, err := db.Aggregates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		fe2, days2 := agg2.FirstExposures, agg2.Days
		if !reflect.DeepEqual(agg1.Multiple, agg2.Multiple) {
			t.Fatalf("assignment_multiple: incremental %v, rebuilt %v", agg1.Multiple, agg2.Multiple)
		}
		if !reflect.DeepEqual(fe1, fe2) {
			for i := range min(len(fe1), len(fe2)) {
				if fe1[i] != fe2[i] {
					t.Fatalf("first exposures differ at %d: incremental %+v, rebuilt %+v", i, fe1[i], fe2[i])
				}
			}
			t.Fatalf("first exposures: %d incremental, %d rebuilt", len(fe1), len(fe2))
		}
		if !reflect.DeepEqual(days1, days2) {
			t.Fatalf("daily aggregates differ:\nincremental %+v\nrebuilt     %+v", days1, days2)
		}
	})
}

// TestAggregatesRetention: retention deletes, by whole UTC days, the days
// before the cutoff's and the subjects first exposed on them; the day of the
// cutoff keeps its counts.
func TestAggregatesRetention(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		day1 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		rows := assignmentRows(4, "production", day1)
		rows[3].Timestamp = day1.Add(26 * time.Hour) // May 2, 14:00: the cutoff's day
		again := rows[0]
		again.EventID, again.Variation, again.Timestamp = "again", "treatment", day1.Add(48*time.Hour)
		if _, err := db.InsertAssignments(ctx, append(rows, again)); err != nil {
			t.Fatal(err)
		}
		if a, _ := db.Aggregates(ctx); len(a.Multiple) != 1 {
			t.Fatalf("before retention: multiple %v", a.Multiple)
		}
		cutoff := day1.Add(30 * time.Hour) // May 2, 18:00
		if _, err := db.DeleteAssignmentsBefore(ctx, cutoff, 100); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteAggregatesBefore(ctx, cutoff); err != nil {
			t.Fatal(err)
		}
		a, err := db.Aggregates(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.FirstExposures) != 1 || a.FirstExposures[0].Subject != rows[3].Subject || len(a.Multiple) != 0 {
			t.Fatalf("after retention: first exposures %+v, multiple %v", a.FirstExposures, a.Multiple)
		}
		want := []store.AggregateDay{
			{Environment: "production", FeatureFlag: "checkout", Allocation: "exp", Variation: "treatment", Day: "2026-05-02", Assignments: 1, FirstExposures: 1},
			{Environment: "production", FeatureFlag: "checkout", Allocation: "exp", Variation: "treatment", Day: "2026-05-03", Assignments: 1},
		}
		if !reflect.DeepEqual(a.Days, want) {
			t.Fatalf("days after retention: %+v", a.Days)
		}
		s, err := db.SummarizeAssignments(ctx, store.AssignmentFilter{Environment: "production", FeatureFlag: "checkout", Allocation: "exp"})
		if err != nil || s.Subjects != 1 || s.Assignments != 2 || s.MultipleVariations != 0 || s.Variations["treatment"] != 1 {
			t.Fatalf("summary after retention %+v, %v", s, err)
		}
	})
}
