package e2e_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// TestNoLossManySubjects: distinct subjects, each assigned once as fast as
// the test can call the getter, go through the default client and
// HTTPLogger (its fast path, no wrapper) into a real server's assignment
// table: one row per subject, none dropped, none doubled. CI runs 20,000
// subjects (2,000 with -short); the recorded run uses a million:
//
//	ALLOT_E2E_SUBJECTS=1000000 go test ./e2e -run NoLossManySubjects -v -timeout 30m
//
// The server stores events more slowly than the client assigns them (a
// few microseconds of database work each, against a fraction of one), so
// the client's buffer is raised to hold the whole burst: the point is that
// nothing between the getter and the table loses an event, not that a
// burst of a million fits the default buffer.
func TestNoLossManySubjects(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	if s := os.Getenv("ALLOT_E2E_SUBJECTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	dsn := storetest.DSN(t, "postgres")
	if storetest.Dialects()[len(storetest.Dialects())-1] != "postgres" {
		dsn = storetest.DSN(t, "sqlite")
	}
	srv := startServer(t, dsn)
	defer stopServer(t, srv)
	ctx := context.Background()
	admin := apiclient.New(srv.URL(), adminToken)
	if _, err := admin.CreateFlag(ctx, core.Flag{Key: "checkout", VariationType: "STRING", Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"c"`)}, {Key: "treatment", Value: json.RawMessage(`"t"`)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutSettings(ctx, core.FlagSettings{Flag: "checkout", Environment: "production", Enabled: true, Allocations: []core.Allocation{{
		Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole,
		Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}}}); err != nil {
		t.Fatal(err)
	}
	key, err := admin.CreateSDKKey(ctx, "production", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{SDKKey: key.Secret, BaseURL: srv.URL() + "/api"})
	if err != nil {
		t.Fatal(err)
	}
	client, err := allot.NewClient(ctx, allot.Config{SDKKey: key.Secret, BaseURL: srv.URL() + "/api", AssignmentLogger: hl,
		EventQueueSize: max(allot.DefaultEventQueueSize, n), PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	subjects := make([]string, n)
	for i := range subjects {
		subjects[i] = "subject-" + strconv.Itoa(i)
	}
	attrs := allot.Attributes{"plan": "pro"}
	start := time.Now()
	for _, s := range subjects {
		if v := client.GetStringAssignment("checkout", s, attrs, "none"); v == "none" {
			t.Fatalf("%s got the default: the configuration is not loaded", s)
		}
	}
	assigned := time.Since(start)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	if err := client.Close(cctx); err != nil { // closes hl after the delivery
		t.Fatal(err)
	}
	delivered := time.Since(start)
	st, ls := client.Status(), hl.Stats()
	t.Logf("%d subjects: assigned in %v (%.0f ns each), in the table after %v; client: logged %d, dropped %d; HTTP logger: %+v",
		n, assigned.Round(time.Millisecond), float64(assigned.Nanoseconds())/float64(n), delivered.Round(time.Millisecond),
		st.EventsLogged, st.EventsDropped, ls)
	if st.EventsDropped != 0 || st.EventsLogged != uint64(n) || ls.Dropped != 0 || ls.Rejected != 0 || ls.Sent != uint64(n) {
		t.Fatalf("events lost on the way: client %+v, logger %+v", st, ls)
	}

	r, w := io.Pipe()
	defer r.Close() // ends the export if the test stops reading early
	go func() {
		w.CloseWithError(admin.ExportAssignments(ctx, apiclient.ExportQuery{Environment: "production", Flag: "checkout"}, w))
	}()
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	if _, err := cr.Read(); err != nil { // header
		t.Fatal(err)
	}
	ids := make(map[string]struct{}, n)
	seen := make([]bool, n)
	rows := 0
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows++
		ids[rec[0]] = struct{}{}
		i, err := strconv.Atoi(rec[6][len("subject-"):])
		if err != nil || i < 0 || i >= n || seen[i] {
			t.Fatalf("row %d: unexpected or repeated subject %q", rows, rec[6])
		}
		seen[i] = true
	}
	if rows != n || len(ids) != n {
		t.Fatalf("the table has %d rows with %d distinct event ids, want %d", rows, len(ids), n)
	}
}
