package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/servetest"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// `allot serve --sink` killed with SIGKILL while events stream in and
// seals run, three times, then restarted: the sealed files hold every row
// of the table exactly once, equal to the table's, and every event the
// server acknowledged is in the table.
func TestSinkSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs allot serve")
	}
	bin := servetest.Build(t, ".")
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			dsn := storetest.DSN(t, dialect)
			sinkDir := filepath.Join(t.TempDir(), "sink")
			const token = "allot_admin_sink-kill-test-token-0123456789"
			acked := map[string]bool{}
			var key string
			next := 0
			for round := range 4 {
				p := servetest.Serve(t, bin, token, "--db", dsn, "--sink", sinkDir, "--sink-interval", "50ms", "--sink-rows", "100000", "--log-level", "warn")
				cmd, url := p.Cmd, p.URL
				if key == "" {
					k, err := apiclient.New(url, token).CreateSDKKey(context.Background(), core.DefaultEnvironment, "sink")
					if err != nil {
						t.Fatal(err)
					}
					key = k.Secret
				}
				if round == 3 { // the last run ends gracefully once all is sealed
					waitSealed(t, dsn, sinkDir)
					cmd.Process.Signal(os.Interrupt)
					if err := cmd.Wait(); err != nil {
						t.Fatalf("allot serve: %v", err)
					}
					break
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				var mu sync.Mutex
				wg.Go(func() {
					for batch := 0; ; batch++ {
						select {
						case <-stop:
							return
						default:
						}
						ids, body := events(next, 300)
						next += 300
						resp, err := http.Post(url+"/api/v1/assignments?apiKey="+key, "application/json", bytes.NewReader(body))
						if err != nil {
							continue // killed
						}
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							mu.Lock()
							for _, id := range ids {
								acked[id] = true
							}
							mu.Unlock()
						}
					}
				})
				time.Sleep(time.Duration(700+round*300) * time.Millisecond)
				// Stop the sink from recording so that its seals write
				// files and cannot record them: the kill lands in the
				// window between the two, every time.
				release := lockSinks(t, dialect, dsn)
				time.Sleep(400 * time.Millisecond)
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				cmd.Wait()
				release()
				close(stop)
				wg.Wait()
				if !unrecordedFiles(t, dsn, sinkDir) {
					t.Fatalf("round %d: no file beyond the recorded sequence: the kill missed the window", round)
				}
				// Rows that arrive before the restart (through another
				// replica, say): recovery must rewrite the interrupted seal
				// as it was, not a larger one beside it.
				insertDirect(t, dsn, round)
			}
			db, err := store.Open(context.Background(), dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			want := map[string]table.Row{}
			if err := db.Assignments(context.Background(), store.AssignmentFilter{}, func(r *table.Row) error {
				want[r.EventID] = *r
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			for id := range acked {
				if _, ok := want[id]; !ok {
					t.Errorf("acknowledged event %s is not in the table", id)
				}
			}
			got := servetest.ReadSealed(t, sinkDir)
			if len(want) < 1000 {
				t.Fatalf("only %d rows ingested: the test proves little", len(want))
			}
			seen := map[string]bool{}
			for _, r := range got {
				if seen[r.EventID] {
					t.Errorf("row %s sealed twice", r.EventID)
				}
				seen[r.EventID] = true
				if !reflect.DeepEqual(r, want[r.EventID]) {
					t.Errorf("row %s: sealed %+v, table %+v", r.EventID, r, want[r.EventID])
				}
			}
			if len(seen) != len(want) {
				t.Errorf("%d distinct rows sealed, the table holds %d", len(seen), len(want))
			}
			t.Logf("%d rows (%d acknowledged) sealed exactly once across 3 kills", len(want), len(acked))
		})
	}
}

// lockSinks stops the sink from recording what it seals until release:
// on PostgreSQL a lock holds its write (reads go on, and so does
// ingestion); on SQLite, where a lock would stop ingestion too, a trigger
// makes the write fail, which leaves the files unrecorded just the same.
func lockSinks(t *testing.T, dialect, dsn string) (release func()) {
	t.Helper()
	ctx := context.Background()
	driver, lock := "pgx", []string{"BEGIN", "LOCK TABLE sinks IN EXCLUSIVE MODE"}
	if dialect == "sqlite" {
		driver, dsn, lock = "sqlite", store.SQLiteDSN(dsn), []string{
			`CREATE TRIGGER sinks_fail_update BEFORE UPDATE ON sinks BEGIN SELECT RAISE(ABORT, 'test: no record'); END`,
			`CREATE TRIGGER sinks_fail_insert BEFORE INSERT ON sinks BEGIN SELECT RAISE(ABORT, 'test: no record'); END`,
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range lock {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return func() {
		if dialect == "sqlite" {
			for _, q := range []string{`DROP TRIGGER sinks_fail_update`, `DROP TRIGGER sinks_fail_insert`} {
				if _, err := conn.ExecContext(ctx, q); err != nil {
					t.Error(err)
				}
			}
		} else {
			// PostgreSQL finishes a statement whose client died once the
			// lock is free: end the killed server's backends waiting on
			// this lock (and only those) as the kill would have.
			if _, err := conn.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))`); err != nil {
				t.Error(err)
			}
			conn.ExecContext(ctx, "ROLLBACK")
		}
		conn.Close()
		db.Close()
	}
}

// unrecordedFiles reports whether a sealed file starts beyond the sequence
// the database records for the sink.
func unrecordedFiles(t *testing.T, dsn, dir string) bool {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	abs, _ := filepath.Abs(dir)
	sealed, err := db.SinkSealed(context.Background(), "file://"+filepath.ToSlash(abs))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		var first, last int64
		if err == nil && !e.IsDir() {
			if _, err := fmt.Sscanf(e.Name(), "part-%020d-%020d.parquet", &first, &last); err == nil && first > sealed {
				found = true
			}
		}
		return nil
	})
	return found
}

func insertDirect(t *testing.T, dsn string, round int) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows := make([]table.Row, 50)
	for i := range rows {
		ts := time.Date(2026, 11, 20+i%3, 2, 0, 0, i*1000, time.UTC)
		rows[i] = table.Row{EventID: fmt.Sprintf("direct-%d-%02d", round, i), Environment: core.DefaultEnvironment, Experiment: "f-a",
			FeatureFlag: "f", Allocation: "a", Variation: "v0", Subject: fmt.Sprintf("d%d", i), SubjectAttributes: []byte("{}"),
			Timestamp: ts, ReceivedAt: ts}
	}
	if _, err := db.InsertAssignments(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
}

// events is a batch of n events numbered from start, as SDKs send them.
func events(start, n int) ([]string, []byte) {
	ids := make([]string, n)
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		k := start + i
		ids[i] = fmt.Sprintf("kill-%08d", k)
		if i > 0 {
			b.WriteByte(',')
		}
		ts := time.Date(2026, 11, 20+k%3, 1, 0, 0, k*1000, time.UTC).Format(time.RFC3339Nano)
		fmt.Fprintf(&b, `{"eventId":%q,"featureFlag":"f","allocation":"a","experiment":"f-a","variation":"v%d","subject":"s%d","timestamp":%q,"subjectAttributes":{"k":%d}}`,
			ids[i], k%2, k, ts, k)
	}
	b.WriteByte(']')
	return ids, []byte(b.String())
}

// waitSealed waits until the sealed files hold as many rows as the table.
func waitSealed(t *testing.T, dsn, dir string) {
	t.Helper()
	db, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); ; {
		n, err := db.CountAssignments(context.Background(), store.AssignmentFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if got := len(servetest.ReadSealed(t, dir)); int64(got) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sink did not seal the table's %d rows in 30 s", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
