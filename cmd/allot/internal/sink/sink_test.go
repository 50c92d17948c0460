package sink_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/sink"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

func forEachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, storetest.Open(t, d))
		})
	}
}

// forDialect runs fn on a database of dialect d, unless that dialect is
// off (storetest.Dialects).
func forDialect(t *testing.T, d string, fn func(t *testing.T, db *store.DB)) {
	if !slices.Contains(storetest.Dialects(), d) {
		t.Skipf("%s is off", d)
	}
	fn(t, storetest.Open(t, d))
}

var day0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// rows makes n rows numbered from start, spread over two environments
// (one needing escaping) and three days, out of time order.
func rows(start, n int) []table.Row {
	out := make([]table.Row, n)
	for i := range out {
		k := start + i
		env := "prod"
		if k%3 == 0 {
			env = "staging/eu"
		}
		ts := day0.Add(time.Duration((k*7)%3)*24*time.Hour + time.Duration(k)*time.Microsecond*1001)
		out[i] = table.Row{
			EventID: fmt.Sprintf("ev-%06d", k), Environment: env, Experiment: "flag-alloc", FeatureFlag: "flag",
			Allocation: "alloc", Variation: []string{"a", "b"}[k%2], Subject: fmt.Sprintf("user-%d", k%17),
			SubjectAttributes: json.RawMessage(fmt.Sprintf(`{"n":%d}`, k)), Timestamp: ts,
			SDKName: "go", SDKVersion: "1.0.0", ReceivedAt: day0.Add(72*time.Hour + time.Duration(k)*time.Millisecond),
		}
	}
	return out
}

func insert(t *testing.T, db *store.DB, rs []table.Row) {
	t.Helper()
	if _, err := db.InsertAssignments(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
}

func tableRows(t *testing.T, db *store.DB) map[string]table.Row {
	t.Helper()
	all := map[string]table.Row{}
	err := db.Assignments(context.Background(), store.AssignmentFilter{}, func(r *table.Row) error {
		all[r.EventID] = *r
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}

type sealedFile struct {
	rel         string
	first, last int64
	rows        []table.Row
	data        []byte
}

// readDir reads every sealed file of a directory back (readFiles).
func readDir(t *testing.T, dir string) []sealedFile {
	t.Helper()
	all := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if strings.HasPrefix(e.Name(), ".") {
			return nil // a seal in progress, as readers are told to skip
		}
		rel, _ := filepath.Rel(dir, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		all[filepath.ToSlash(rel)] = data
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return readFiles(t, all)
}

// readFiles reads sealed files (relative path to content) with parquet-go,
// checks their names and that each row sits in its partition, and returns
// them in path order.
func readFiles(t *testing.T, all map[string][]byte) []sealedFile {
	t.Helper()
	var files []sealedFile
	for _, rel := range slices.Sorted(maps.Keys(all)) {
		data := all[rel]
		name := path.Base(rel)
		var first, last int64
		if _, err := fmt.Sscanf(name, "part-%020d-%020d.parquet", &first, &last); err != nil || name != sink.FileName(first, last) {
			t.Errorf("unexpected file %s", rel)
			continue
		}
		rs, err := table.ReadParquet(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, r := range rs {
			if want := sink.PartitionDir(r.Environment, r.Timestamp); path.Dir(rel) != want {
				t.Errorf("%s holds row %s of partition %s", rel, r.EventID, want)
			}
		}
		files = append(files, sealedFile{rel, first, last, rs, data})
	}
	return files
}

// sameRows checks that the files hold every row of the table exactly once,
// equal column for column.
func sameRows(t *testing.T, files []sealedFile, want map[string]table.Row) {
	t.Helper()
	seen := map[string]bool{}
	for _, f := range files {
		for _, r := range f.rows {
			if seen[r.EventID] {
				t.Errorf("row %s sealed twice", r.EventID)
			}
			seen[r.EventID] = true
			w, ok := want[r.EventID]
			if !ok {
				t.Errorf("%s: row %s is not in the table", f.rel, r.EventID)
				continue
			}
			if !reflect.DeepEqual(r, w) {
				t.Errorf("%s: row %s\n got %+v\nwant %+v", f.rel, r.EventID, r, w)
			}
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("row %s was not sealed", id)
		}
	}
}

func sealAll(t *testing.T, s *sink.Sink, limit int) {
	t.Helper()
	for {
		n, err := s.Seal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n < limit {
			return
		}
	}
}

func TestSealReadBack(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		dir := t.TempDir()
		s, err := sink.New(db, sink.Config{Dir: dir, Rows: 40})
		if err != nil {
			t.Fatal(err)
		}
		insert(t, db, rows(0, 100))
		sealAll(t, s, 40)
		insert(t, db, rows(100, 57))
		insert(t, db, rows(50, 60)) // known event ids: nothing new
		sealAll(t, s, 40)
		files := readDir(t, dir)
		sameRows(t, files, tableRows(t, db))
		// Sequence ranges never overlap across files of different seals,
		// and within a file rows are in sequence order (ids here).
		for _, f := range files {
			if f.first > f.last {
				t.Errorf("%s: first > last", f.rel)
			}
			if !slices.IsSortedFunc(f.rows, func(a, b table.Row) int { return strings.Compare(a.EventID, b.EventID) }) {
				t.Errorf("%s: rows out of sequence order", f.rel)
			}
		}
		if !strings.Contains(files[0].rel, "environment=") || len(files) < 6 {
			t.Errorf("files %d, first %s: want partitions by environment and date", len(files), files[0].rel)
		}
		if n, err := s.Seal(context.Background()); n != 0 || err != nil {
			t.Fatalf("seal with nothing new: %d rows, %v", n, err)
		}
	})
}

// A crash after the files are written and before the sequence is recorded:
// the next start rewrites the same files, byte for byte, even though more
// rows have arrived since, and seals nothing twice.
func TestRecoverRewritesIdentically(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		s, err := sink.New(db, sink.Config{Dir: dir, Rows: 1000})
		if err != nil {
			t.Fatal(err)
		}
		insert(t, db, rows(0, 30))
		sealAll(t, s, 1000)
		before := readDir(t, dir)
		// The crash: the record is lost, the files stay, a temporary file
		// of the next seal is left half written.
		if err := db.SetSinkSealed(ctx, s.Name(), 0); err != nil {
			t.Fatal(err)
		}
		stray := filepath.Join(dir, filepath.Dir(before[0].rel), ".part-123.tmp")
		if err := os.WriteFile(stray, []byte("half"), 0o644); err != nil {
			t.Fatal(err)
		}
		insert(t, db, rows(30, 25))
		if err := s.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		after := readDir(t, dir)
		if len(after) != len(before) {
			t.Fatalf("%d files after recovery, want the %d written before", len(after), len(before))
		}
		for i := range before {
			if after[i].rel != before[i].rel || !bytes.Equal(after[i].data, before[i].data) {
				t.Errorf("file %s differs after recovery (now %s)", before[i].rel, after[i].rel)
			}
		}
		if _, err := os.Stat(stray); !os.IsNotExist(err) {
			t.Errorf("temporary file left: %v", err)
		}
		sealAll(t, s, 1000)
		sameRows(t, readDir(t, dir), tableRows(t, db))
	})
}

func TestNewRefusesTooManyRows(t *testing.T) {
	if _, err := sink.New(nil, sink.Config{Dir: t.TempDir(), Rows: sink.MaxRows + 1}); err == nil {
		t.Fatal("no error")
	}
}

// Run seals on its own at its interval, recovers first, and returns once
// its context ends.
func TestRun(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	dir := t.TempDir()
	s, err := sink.New(db, sink.Config{Dir: dir, Interval: 20 * time.Millisecond, Rows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, db, rows(0, 25))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	insert(t, db, rows(25, 25))
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := 0
		for _, f := range readDir(t, dir) {
			n += len(f.rows)
		}
		if n == 50 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rows sealed after 10 s, want 50", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	sameRows(t, readDir(t, dir), tableRows(t, db))
}

// failRecord fails its first records, as a database that goes away between
// a seal's files and its record.
type failRecord struct {
	*store.DB
	mu    sync.Mutex
	fails int
}

func (f *failRecord) SetSinkSealed(ctx context.Context, name string, seq int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fails > 0 {
		f.fails--
		return errors.New("test: database unavailable")
	}
	return f.DB.SetSinkSealed(ctx, name, seq)
}

// A seal whose record fails is recovered before the next one: rows that
// arrived meanwhile are not sealed beside the unrecorded files.
func TestRunRecoversAfterFailedRecord(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	st := &failRecord{DB: db, fails: 3}
	dir := t.TempDir()
	s, err := sink.New(st, sink.Config{Dir: dir, Interval: 10 * time.Millisecond, Rows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	for i := range 10 {
		insert(t, db, rows(i*10, 10))
		time.Sleep(15 * time.Millisecond)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		sealed, err := db.SinkSealed(context.Background(), s.Name())
		if err != nil {
			t.Fatal(err)
		}
		top, _ := db.AssignmentHorizon(context.Background(), true)
		if sealed == top {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sealed %d of %d after 10 s", sealed, top)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	sameRows(t, readDir(t, dir), tableRows(t, db))
}
