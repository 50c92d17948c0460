package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

func backupRows(batch, n int) []table.Row {
	now := time.Now()
	rows := make([]table.Row, n)
	for i := range rows {
		rows[i] = table.Row{EventID: fmt.Sprintf("b%d-%d", batch, i), Environment: "production", Experiment: "f-a",
			FeatureFlag: "f", Allocation: "a", Variation: "v", Subject: fmt.Sprint("user-", i),
			SubjectAttributes: []byte("{}"), Timestamp: now, ReceivedAt: now}
	}
	return rows
}

// A backup taken while another connection keeps writing is a whole
// database: it opens, passes the integrity check, and holds a count of
// rows between the counts before and after it was taken.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "allot.db")
	db, err := store.Open(ctx, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.InsertAssignments(ctx, backupRows(0, 500)); err != nil {
		t.Fatal(err)
	}

	// The writer stands in for a running server's ingestion.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	started := make(chan struct{})
	go func() {
		defer wg.Done()
		for b := 1; ; b++ {
			if _, err := db.InsertAssignments(ctx, backupRows(b, 50)); err != nil {
				t.Error(err)
				return
			}
			if b == 1 {
				close(started)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	<-started
	before, err := db.CountAssignments(ctx, store.AssignmentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "copy.db")
	code, stdout, stderr := runWith(nil, "backup", "--db", src, "--out", out)
	close(stop)
	wg.Wait()
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "backed up") {
		t.Errorf("backup output: %q", stdout)
	}
	after, err := db.CountAssignments(ctx, store.AssignmentFilter{})
	if err != nil {
		t.Fatal(err)
	}

	cp, err := store.Open(ctx, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	got, err := cp.CountAssignments(ctx, store.AssignmentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if got < before || got > after || got%50 != 0 {
		t.Errorf("copy has %d rows; want whole batches between %d and %d", got, before, after)
	}
	if after == before {
		t.Log("the writer wrote nothing during the backup: the test did not overlap them")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".copy.db.partial-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

// A backup never overwrites a file, never runs on PostgreSQL, and needs a
// database that exists.
func TestBackupRefuses(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "allot.db")
	db, err := store.Open(context.Background(), src, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	existing := filepath.Join(dir, "existing")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--db", src, "--out", existing}, 2, "exists"},
		{[]string{"--db", "postgres://127.0.0.1/x", "--out", filepath.Join(dir, "n")}, 2, "pg_dump"},
		{[]string{"--db", filepath.Join(dir, "missing.db"), "--out", filepath.Join(dir, "n")}, 1, "no such database"},
		{[]string{"--db", src}, 2, "usage"},
	} {
		code, _, stderr := runWith(nil, append([]string{"backup"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.msg) {
			t.Errorf("backup %v: exit %d, %q; want %d and %q", c.args, code, stderr, c.code, c.msg)
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("existing file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("backup created the missing source database")
	}
}
