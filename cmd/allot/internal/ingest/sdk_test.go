package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// TestSDKLoggerIntoTable: the Go SDK's HTTP logger, asked for batches
// larger than the server takes, sends at most table.MaxEventsPerRequest per
// request (the SDK keeps its own copy of the limit, since it cannot import
// the server's packages: this test keeps the two equal), and every field
// of its events arrives in the table.
func TestSDKLoggerIntoTable(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	w := ingest.NewWriter(db, ingest.Options{})
	defer w.Close(context.Background())
	h := &ingest.Handler{Environment: func(string) (string, bool) { return "production", true }, Writer: w,
		Log: slog.New(slog.DiscardHandler), Now: time.Now}
	var mu sync.Mutex
	var sizes []int
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		var resp ingest.Response
		json.Unmarshal(rec.Body.Bytes(), &resp)
		mu.Lock()
		sizes = append(sizes, resp.Accepted+len(resp.Rejected))
		mu.Unlock()
		for k, v := range rec.Header() {
			rw.Header()[k] = v
		}
		rw.WriteHeader(rec.Code)
		rw.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	logger, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{SDKKey: "k", BaseURL: srv.URL + "/api", BatchSize: 3 * table.MaxEventsPerRequest,
		FlushInterval: time.Hour, BufferSize: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2*table.MaxEventsPerRequest + 500
	at := time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)
	for i := range n {
		logger.LogAssignment(allot.AssignmentEvent{EventID: fmt.Sprint("e-", i), FeatureFlag: "f", Allocation: "a", Experiment: "f-a",
			Variation: "v", Subject: fmt.Sprint("user-", i), SubjectAttributes: allot.Attributes{"n": i, "c": "US"}, Timestamp: at,
			ExtraLogging: map[string]string{"x": "y"}, MetaData: map[string]string{"sdkLanguage": "go", "sdkVersion": "1.2.3"}})
	}
	// 20,500 events through the real handler into SQLite: about 20 s under
	// the race detector on an idle 2-core machine. The bound is for a hang,
	// not for speed.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := logger.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := logger.Stats(); st.Sent != n || st.Rejected != 0 || st.Dropped != 0 {
		t.Fatalf("logger stats %+v, want %d sent", st, n)
	}
	for _, s := range sizes {
		if s > table.MaxEventsPerRequest {
			t.Fatalf("a request carried %d events; the server takes %d", s, table.MaxEventsPerRequest)
		}
	}
	var row table.Row
	count := 0
	db.Assignments(ctx, store.AssignmentFilter{}, func(r *table.Row) error {
		if count++; r.EventID == "e-7" {
			row = *r
		}
		return nil
	})
	want := table.Row{EventID: "e-7", Environment: "production", Experiment: "f-a", FeatureFlag: "f", Allocation: "a", Variation: "v",
		Subject: "user-7", SubjectAttributes: json.RawMessage(`{"c":"US","n":7}`), Timestamp: at.Truncate(time.Microsecond),
		SDKName: "go", SDKVersion: "1.2.3", ReceivedAt: row.ReceivedAt}
	if count != n || fmt.Sprintf("%+v", row) != fmt.Sprintf("%+v", want) || string(row.SubjectAttributes) != string(want.SubjectAttributes) || row.ReceivedAt.IsZero() {
		t.Fatalf("%d rows; e-7 is\n%+v %s\nwant\n%+v %s", count, row, row.SubjectAttributes, want, want.SubjectAttributes)
	}
}

// TestSDKLoggerOversizedEvent: one event larger than the server takes
// (subject attributes of 17 MiB) is dropped by the SDK and counted; the
// valid events batched with it still arrive. Before, the batch passed the
// server's 16 MiB limit and all of it was refused (413) and dropped.
func TestSDKLoggerOversizedEvent(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	w := ingest.NewWriter(db, ingest.Options{})
	defer w.Close(context.Background())
	srv := httptest.NewServer(&ingest.Handler{Environment: func(string) (string, bool) { return "production", true }, Writer: w,
		Log: slog.New(slog.DiscardHandler), Now: time.Now})
	defer srv.Close()
	logger, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{SDKKey: "k", BaseURL: srv.URL + "/api", FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	huge := strings.Repeat("x", table.MaxRequestBytes+1<<20)
	for i, attr := range []string{"a", "b", huge, "c"} {
		logger.LogAssignment(allot.AssignmentEvent{EventID: fmt.Sprint("o-", i), FeatureFlag: "f", Allocation: "a", Experiment: "f-a",
			Variation: "v", Subject: fmt.Sprint("user-", i), SubjectAttributes: allot.Attributes{"blob": attr}, Timestamp: at})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := logger.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := logger.Stats(); st.Sent != 3 || st.Dropped != 1 {
		t.Errorf("logger stats %+v, want 3 sent and 1 dropped", st)
	}
	if n, err := db.CountAssignments(ctx, store.AssignmentFilter{}); err != nil || n != 3 {
		t.Fatalf("%d events stored (%v), want the 3 valid ones", n, err)
	}
}
