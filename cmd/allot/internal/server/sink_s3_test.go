package server

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/sink/s3test"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// A malformed sink URL stops the server before it starts anything.
func TestStartRefusesBadSinkURL(t *testing.T) {
	for _, u := range []string{"s3://bucket?endpont=http://127.0.0.1:1", "s3://?endpoint=http://127.0.0.1:1"} {
		s, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DB: storetest.DSN(t, "sqlite"), Sink: u})
		if err == nil {
			s.Close(context.Background())
			t.Fatalf("%s: started", u)
		}
		if !strings.Contains(err.Error(), "s3 url") {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// `allot serve --sink s3://…` (Config.Sink) seals into a real S3-compatible
// server on its own: every row of the table appears in the bucket.
func TestServeSinksIntoS3(t *testing.T) {
	srv := s3test.Start(t)
	srv.Env(t)
	bucket := srv.Bucket(t, "serve")
	dsn := storetest.DSN(t, "sqlite")
	s, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DB: dsn, PollInterval: time.Hour,
		Sink: "s3://" + bucket + "/allot?endpoint=" + srv.Endpoint, SinkInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	rows := make([]table.Row, 500)
	for i := range rows {
		ts := time.Date(2026, 11, 20+i%2, 3, 0, 0, i*1000, time.UTC)
		rows[i] = table.Row{EventID: fmt.Sprintf("s3-%04d", i), Environment: "production", Experiment: "f-a", FeatureFlag: "f",
			Allocation: "a", Variation: "v", Subject: fmt.Sprintf("u%d", i), SubjectAttributes: []byte(`{}`), Timestamp: ts, ReceivedAt: ts}
	}
	if _, err := s.db.InsertAssignments(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	want := map[string]table.Row{}
	if err := s.db.Assignments(context.Background(), store.AssignmentFilter{}, func(r *table.Row) error {
		want[r.EventID] = *r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		got := map[string]table.Row{}
		for key, data := range srv.Objects(t, bucket, "allot/") {
			rs, err := table.ReadParquet(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			for _, r := range rs {
				if _, dup := got[r.EventID]; dup {
					t.Fatalf("row %s sealed twice", r.EventID)
				}
				got[r.EventID] = r
			}
		}
		if len(got) == len(want) {
			for id, r := range want {
				if !reflect.DeepEqual(got[id], r) {
					t.Fatalf("row %s: sealed %+v, table %+v", id, got[id], r)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rows in the bucket after 30 s", len(got), len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
