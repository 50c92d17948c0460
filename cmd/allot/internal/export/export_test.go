package export_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/export"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// blockingWriter is a client that reads nothing until released.
type blockingWriter struct {
	*httptest.ResponseRecorder
	release chan struct{}
	writing chan struct{}
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	select {
	case b.writing <- struct{}{}:
	default:
	}
	<-b.release
	return b.ResponseRecorder.Write(p)
}

// An Exporter runs at most its slots at once, whoever calls it: the next
// export is refused with 503 and Retry-After, and nothing of a file; once
// the slot is free it streams.
func TestExporterBound(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	now := time.Now().UTC()
	if _, err := db.InsertAssignments(context.Background(), []table.Row{{EventID: "e1", Environment: "production", FeatureFlag: "f",
		Allocation: "a", Variation: "on", Subject: "s", SubjectAttributes: []byte(`{}`), Timestamp: now, ReceivedAt: now}}); err != nil {
		t.Fatal(err)
	}
	e := export.New(db, nil, 1)
	q := export.Request{Filter: store.AssignmentFilter{FeatureFlag: "f"}, Format: table.CSV}
	slow := &blockingWriter{ResponseRecorder: httptest.NewRecorder(), release: make(chan struct{}), writing: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- e.Serve(slow, httptest.NewRequest("GET", "/", nil), q) }()
	<-slow.writing // the first export holds its slot, writing

	w := httptest.NewRecorder()
	err := e.Serve(w, httptest.NewRequest("GET", "/", nil), q)
	if core.ErrorCode(err) != core.EUNAVAILABLE || w.Header().Get("Retry-After") == "" || w.Header().Get("Content-Disposition") != "" || w.Body.Len() != 0 {
		t.Fatalf("second export: %v, headers %v, %d bytes", err, w.Header(), w.Body.Len())
	}
	close(slow.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	w = httptest.NewRecorder()
	if err := e.Serve(w, httptest.NewRequest("GET", "/", nil), q); err != nil || w.Code != http.StatusOK ||
		w.Header().Get("Content-Disposition") != `attachment; filename="assignments-f.csv"; filename*=UTF-8''assignments-f.csv` {
		t.Fatalf("after: %v %d %v", err, w.Code, w.Header())
	}
}

// A download's name says which table, flag and allocation it holds.
func TestFilename(t *testing.T) {
	for _, c := range []struct {
		q    export.Request
		want string
	}{
		{export.Request{Format: table.CSV}, "assignments.csv"},
		{export.Request{Filter: store.AssignmentFilter{FeatureFlag: "f"}, Format: table.Parquet}, "assignments-f.parquet"},
		{export.Request{Filter: store.AssignmentFilter{FeatureFlag: "f", Allocation: "exp"}, Format: table.CSV}, "assignments-f-exp.csv"},
		{export.Request{Filter: store.AssignmentFilter{FeatureFlag: "f", Experiment: "f-exp"}, Format: table.CSV}, "assignments-f-exp.csv"},
		{export.Request{Filter: store.AssignmentFilter{Experiment: "x"}, Format: table.CSV}, "assignments-x.csv"},
		{export.Request{FirstExposures: true, Filter: store.AssignmentFilter{FeatureFlag: "f", Allocation: "exp"}, Format: table.JSONL}, "first-exposures-f-exp.jsonl"},
	} {
		if got := c.q.Filename(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.q, got, c.want)
		}
	}
}
