package e2e_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/servetest"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// TestWarehouseFeedEndToEnd is issue 14's joint proof. Events go from the
// SDK's HTTP logger through a network that fails on purpose (500s, answers
// cut after the server stored the batch, so batches are delivered twice)
// into a real `allot serve` on a SQLite file, sealing into a local
// directory; the server is killed with SIGKILL mid-stream and restarted,
// and a slice of events is logged a second time. Then, against the raw
// assignment table: the aggregates (first exposures, daily counts, subjects
// in several variations) equal those computed here from the raw rows, and
// `allot tables rebuild` gives the same aggregates again; the first-exposure
// table (holdout columns included) is the one the raw rows imply; and the
// sealed Parquet files hold every raw row exactly once, column for column.
func TestWarehouseFeedEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the allot binary")
	}
	dir := t.TempDir()
	bin := servetest.Build(t, "..")
	dsn := filepath.Join(dir, "allot.db")
	sinkDir := filepath.Join(dir, "sink")
	const token = "allot_admin_warehouse-e2e-0123456789abcdef"
	serve := func() *servetest.Process {
		return servetest.Serve(t, bin, token, "--db", dsn, "--sink", sinkDir, "--sink-interval", "100ms", "--sink-rows", "3000", "--log-level", "warn")
	}
	srv := serve()
	ctx := context.Background()
	key, err := apiclient.New(srv.URL, token).CreateSDKKey(ctx, core.DefaultEnvironment, "warehouse")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &faultyProxy{rng: rand.New(rand.NewPCG(21, 22))}
	u, _ := url.Parse(srv.URL)
	proxy.target.Store(u)
	front := httptest.NewServer(proxy)
	defer front.Close()
	hl, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{SDKKey: key.Secret, BaseURL: front.URL + "/api",
		BatchSize: 400, FlushInterval: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, BufferSize: 100_000})
	if err != nil {
		t.Fatal(err)
	}

	// 40,000 events: 6,000 subjects in two experiments over three days,
	// out of time order; one event in ten goes to the subject's other
	// variation (so some subjects are seen in both); a tenth of the
	// subjects come through a holdout's allocation.
	const total = 40_000
	rng := rand.New(rand.NewPCG(5, 6))
	start := time.Now().UTC().Add(-60 * time.Hour).Truncate(time.Second)
	events := make([]allot.AssignmentEvent, total)
	for i := range events {
		flag := []string{"checkout", "pricing"}[rng.IntN(2)]
		s := rng.IntN(6000)
		v := []string{"control", "treatment"}[s%2]
		if rng.IntN(10) == 0 {
			v = []string{"control", "treatment"}[(s+1)%2]
		}
		e := allot.AssignmentEvent{EventID: fmt.Sprintf("wh-%06d", i), FeatureFlag: flag, Allocation: "exp", Experiment: flag + "-exp",
			Variation: v, Subject: fmt.Sprintf("user-%04d", s), SubjectAttributes: allot.Attributes{"n": float64(i)},
			Timestamp: start.Add(time.Duration(rng.IntN(60*3600)) * time.Second).Add(time.Duration(i) * time.Microsecond),
			MetaData:  map[string]string{"sdkName": "e2e", "sdkVersion": "1.0.0"}}
		if s%10 == 0 {
			e.ExtraLogging = map[string]string{"holdoutKey": "h", "holdoutVariation": []string{"status_quo", "all_shipped"}[s%20/10]}
		}
		events[i] = e
	}
	for _, e := range events[:total/2] {
		hl.LogAssignment(e)
	}
	// Let some batches land and some seals run, then kill -9 mid-stream.
	time.Sleep(1500 * time.Millisecond)
	proxy.target.Store(nil)
	if err := srv.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Cmd.Wait()
	srv = serve()
	u, _ = url.Parse(srv.URL)
	proxy.target.Store(u)
	for _, e := range events[total/2:] {
		hl.LogAssignment(e)
	}
	for _, e := range events[total/4 : total/4+3000] { // delivered again, as a retrying pipeline would
		hl.LogAssignment(e)
	}
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := hl.Flush(fctx); err != nil {
		t.Fatalf("flush: %v (logger %+v)", err, hl.Stats())
	}
	if err := hl.Close(fctx); err != nil {
		t.Fatal(err)
	}
	if st := hl.Stats(); st.Dropped != 0 || st.Rejected != 0 || st.Pending != 0 || st.Retries == 0 {
		t.Fatalf("logger stats %+v", st)
	}
	if proxy.failed.Load() == 0 || proxy.dropped.Load() == 0 {
		t.Fatalf("no faults injected: %d failed, %d dropped of %d", proxy.failed.Load(), proxy.dropped.Load(), proxy.total.Load())
	}
	waitSealedRows(t, sinkDir, total)
	srv.Cmd.Process.Signal(os.Interrupt)
	if err := srv.Cmd.Wait(); err != nil {
		t.Fatalf("allot serve: %v", err)
	}

	db, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw := map[string]table.Row{}
	if err := db.Assignments(ctx, store.AssignmentFilter{}, func(r *table.Row) error {
		if _, ok := raw[r.EventID]; ok {
			t.Errorf("event %s stored twice", r.EventID)
		}
		raw[r.EventID] = *r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(raw) != total {
		t.Fatalf("the table holds %d rows; %d events were logged", len(raw), total)
	}
	for _, e := range events {
		r, ok := raw[e.EventID]
		if !ok || r.Subject != e.Subject || r.Variation != e.Variation || !r.Timestamp.Equal(e.Timestamp.Truncate(time.Microsecond)) ||
			r.Holdout != e.ExtraLogging["holdoutKey"] || r.HoldoutVariation != e.ExtraLogging["holdoutVariation"] {
			t.Fatalf("event %+v: row %+v", e, r)
		}
	}

	want := aggregatesOf(raw)
	got, err := db.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compareAggregates(t, "incremental", got, want)
	multiple, holdouts := 0, 0
	for _, f := range want.FirstExposures {
		if f.MultipleVariations {
			multiple++
		}
		if f.Holdout != "" {
			holdouts++
		}
	}
	if multiple == 0 || holdouts == 0 || len(want.FirstExposures) < 10_000 {
		t.Fatalf("%d first exposures, %d in several variations, %d in a holdout: the run tests too little", len(want.FirstExposures), multiple, holdouts)
	}
	db.Close()
	if out, err := exec.Command(bin, "tables", "rebuild", "--db", dsn).CombinedOutput(); err != nil {
		t.Fatalf("allot tables rebuild: %v\n%s", err, out)
	}
	db, err = store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt, err := db.Aggregates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	compareAggregates(t, "rebuilt", rebuilt, want)

	sealed := servetest.ReadSealed(t, sinkDir)
	seen := map[string]bool{}
	for _, r := range sealed {
		if seen[r.EventID] {
			t.Errorf("row %s sealed twice", r.EventID)
		}
		seen[r.EventID] = true
		if !reflect.DeepEqual(r, raw[r.EventID]) {
			t.Errorf("row %s: sealed %+v, table %+v", r.EventID, r, raw[r.EventID])
		}
	}
	if len(seen) != len(raw) {
		t.Errorf("%d distinct rows sealed, the table holds %d", len(seen), len(raw))
	}
	t.Logf("%d events, %d first exposures (%d in several variations, %d in a holdout), %d days; proxy: %d posts, %d failed, %d cut after storing",
		total, len(want.FirstExposures), multiple, holdouts, len(want.Days), proxy.total.Load(), proxy.failed.Load(), proxy.dropped.Load())
}

// aggregatesOf computes the aggregate tables from raw rows, independently
// of the store: per subject and allocation the earliest event (ties by
// event id), per day and variation the assignments and first exposures,
// per first variation the subjects seen in more than one variation.
func aggregatesOf(raw map[string]table.Row) store.AggregateTables {
	type subj struct{ env, flag, alloc, subject string }
	firsts := map[subj]*table.FirstExposure{}
	variations := map[subj]map[string]bool{}
	for _, r := range raw {
		k := subj{r.Environment, r.FeatureFlag, r.Allocation, r.Subject}
		f := firsts[k]
		if f == nil {
			f = &table.FirstExposure{Environment: r.Environment, FeatureFlag: r.FeatureFlag, Allocation: r.Allocation, Subject: r.Subject,
				FirstVariation: r.Variation, FirstEventID: r.EventID, FirstSeen: r.Timestamp, LastSeen: r.Timestamp,
				Holdout: r.Holdout, HoldoutVariation: r.HoldoutVariation}
			firsts[k] = f
			variations[k] = map[string]bool{}
		} else if r.Timestamp.Before(f.FirstSeen) || (r.Timestamp.Equal(f.FirstSeen) && r.EventID < f.FirstEventID) {
			f.FirstVariation, f.FirstEventID, f.FirstSeen = r.Variation, r.EventID, r.Timestamp
			f.Holdout, f.HoldoutVariation = r.Holdout, r.HoldoutVariation
		}
		if r.Timestamp.After(f.LastSeen) {
			f.LastSeen = r.Timestamp
		}
		f.Exposures++
		variations[k][r.Variation] = true
	}
	// Daily rows and multiple-variation counts are kept per holdout half
	// (migration 0012): a subject counts under its first event's half.
	type dayKey struct{ env, flag, alloc, variation, half, day string }
	days := map[dayKey]*store.AggregateDay{}
	dayOf := func(k dayKey) *store.AggregateDay {
		d := days[k]
		if d == nil {
			d = &store.AggregateDay{Environment: k.env, FeatureFlag: k.flag, Allocation: k.alloc, Variation: k.variation, HoldoutVariation: k.half, Day: k.day}
			days[k] = d
		}
		return d
	}
	for _, r := range raw {
		dayOf(dayKey{r.Environment, r.FeatureFlag, r.Allocation, r.Variation, r.HoldoutVariation, r.Timestamp.UTC().Format(time.DateOnly)}).Assignments++
	}
	a := store.AggregateTables{Multiple: map[string]int64{}}
	for k, f := range firsts {
		f.MultipleVariations = len(variations[k]) > 1
		if f.MultipleVariations {
			key := k.env + "/" + k.flag + "/" + k.alloc + "/" + f.FirstVariation
			if f.HoldoutVariation != "" {
				key += "/" + f.HoldoutVariation
			}
			a.Multiple[key]++
		}
		dayOf(dayKey{k.env, k.flag, k.alloc, f.FirstVariation, f.HoldoutVariation, f.FirstSeen.UTC().Format(time.DateOnly)}).FirstExposures++
		a.FirstExposures = append(a.FirstExposures, *f)
	}
	slices.SortFunc(a.FirstExposures, func(x, y table.FirstExposure) int {
		return strings.Compare(x.Environment+"\x00"+x.FeatureFlag+"\x00"+x.Allocation+"\x00"+x.Subject,
			y.Environment+"\x00"+y.FeatureFlag+"\x00"+y.Allocation+"\x00"+y.Subject)
	})
	for _, d := range days {
		a.Days = append(a.Days, *d)
	}
	slices.SortFunc(a.Days, func(x, y store.AggregateDay) int {
		return strings.Compare(x.Environment+"\x00"+x.FeatureFlag+"\x00"+x.Allocation+"\x00"+x.Day+"\x00"+x.Variation+"\x00"+x.HoldoutVariation,
			y.Environment+"\x00"+y.FeatureFlag+"\x00"+y.Allocation+"\x00"+y.Day+"\x00"+y.Variation+"\x00"+y.HoldoutVariation)
	})
	return a
}

func compareAggregates(t *testing.T, what string, got, want store.AggregateTables) {
	t.Helper()
	if len(got.FirstExposures) != len(want.FirstExposures) {
		t.Fatalf("%s: %d first exposures, the raw rows make %d", what, len(got.FirstExposures), len(want.FirstExposures))
	}
	for i := range want.FirstExposures {
		if !reflect.DeepEqual(got.FirstExposures[i], want.FirstExposures[i]) {
			t.Fatalf("%s: first exposure %d:\n got %+v\nwant %+v", what, i, got.FirstExposures[i], want.FirstExposures[i])
		}
	}
	if !reflect.DeepEqual(got.Days, want.Days) {
		t.Fatalf("%s: daily aggregates\n got %+v\nwant %+v", what, got.Days, want.Days)
	}
	if !reflect.DeepEqual(got.Multiple, want.Multiple) {
		t.Fatalf("%s: subjects in several variations %v, the raw rows make %v", what, got.Multiple, want.Multiple)
	}
}

// waitSealedRows waits until the sealed files hold n rows.
func waitSealedRows(t *testing.T, dir string, n int) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); ; {
		got := len(servetest.ReadSealed(t, dir))
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink sealed %d of %d rows in 60 s", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
