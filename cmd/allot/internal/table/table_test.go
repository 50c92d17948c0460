package table_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

func sampleRows() []table.Row {
	ts := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	return []table.Row{
		{EventID: "e1", Environment: "production", Experiment: "f-a", FeatureFlag: "f", Allocation: "a", Variation: "v",
			Subject: "alice", SubjectAttributes: json.RawMessage(`{"country":"US","n":1.5}`), Timestamp: ts,
			SDKName: "go-allot", SDKVersion: "0.1.0", ReceivedAt: ts.Add(time.Second),
			Holdout: "q3-holdout", HoldoutVariation: table.HoldoutAllShipped},
		{EventID: "e2", Environment: "production", Experiment: "f-a", FeatureFlag: "f", Allocation: "a", Variation: "w",
			Subject: "bob, \"the second\"\nline", SubjectAttributes: nil, Timestamp: ts.Add(time.Minute),
			SDKName: " leading space", ReceivedAt: ts.Add(time.Hour)},
	}
}

func write(t *testing.T, f table.Format, rows []table.Row) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := table.NewWriter(&buf, f)
	ctx := context.Background()
	// Two batches: the header comes once, row groups continue.
	if err := w.Write(ctx, rows[:1]); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(ctx, rows[1:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCSVIsWhatEncodingCSVWrites: the hand-written CSV encoder writes what
// encoding/csv would, so that any CSV reader reads the columns back.
func TestCSVIsWhatEncodingCSVWrites(t *testing.T) {
	rows := sampleRows()
	// Times repeated and changed again: the encoder's cache of their text.
	rows = append(rows, rows[1], rows[0], rows[0])
	got := write(t, table.CSV, rows)
	var want bytes.Buffer
	cw := csv.NewWriter(&want)
	cw.Write(table.Columns)
	for _, r := range rows {
		attrs := string(r.SubjectAttributes)
		if attrs == "" {
			attrs = "{}"
		}
		cw.Write([]string{r.EventID, r.Environment, r.Experiment, r.FeatureFlag, r.Allocation, r.Variation, r.Subject, attrs,
			r.Timestamp.Format(time.RFC3339Nano), r.SDKName, r.SDKVersion, r.ReceivedAt.Format(time.RFC3339Nano),
			r.Holdout, r.HoldoutVariation})
	}
	cw.Flush()
	if string(got) != want.String() {
		t.Fatalf("CSV\n%s\nwant\n%s", got, want.String())
	}
	if !strings.Contains(string(got), "2026-05-01T12:00:00.123456Z") {
		t.Fatalf("times should keep their microseconds:\n%s", got)
	}
}

func TestEmptyCSVHasHeader(t *testing.T) {
	var buf bytes.Buffer
	w := table.NewWriter(&buf, table.CSV)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if buf.String() != strings.Join(table.Columns, ",")+"\n" {
		t.Fatalf("empty table %q", buf.String())
	}
}

func TestJSONLines(t *testing.T) {
	rows := sampleRows()
	lines := strings.Split(strings.TrimSuffix(string(write(t, table.JSONL, rows)), "\n"), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("%d lines", len(lines))
	}
	for i, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if len(m) != len(table.Columns) {
			t.Fatalf("line %d has keys %v, want the columns %v", i, m, table.Columns)
		}
		for _, c := range table.Columns {
			if _, ok := m[c]; !ok {
				t.Fatalf("line %d lacks %s", i, c)
			}
		}
		if m["subject"] != rows[i].Subject || m["timestamp"] != rows[i].Timestamp.Format(time.RFC3339Nano) ||
			m["holdout"] != rows[i].Holdout || m["holdout_variation"] != rows[i].HoldoutVariation {
			t.Fatalf("line %d: %v", i, m)
		}
	}
	if !strings.Contains(lines[0], `"subject_attributes":{"country":"US","n":1.5}`) || !strings.Contains(lines[1], `"subject_attributes":{}`) {
		t.Fatalf("attributes should be JSON objects: %v", lines)
	}
}

func TestParquetRoundTrip(t *testing.T) {
	rows := sampleRows()
	data := write(t, table.Parquet, rows)
	got, err := table.ReadParquet(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rows[1].SubjectAttributes = json.RawMessage("{}")
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("read back\n%+v\nwant\n%+v", got, rows)
	}
}

// TestParquetRowGroups: a large table is written in bounded row groups.
func TestParquetRowGroups(t *testing.T) {
	row := sampleRows()[0]
	rows := make([]table.Row, 100_000)
	for i := range rows {
		rows[i] = row
	}
	data := write(t, table.Parquet, rows)
	got, err := table.ReadParquet(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(got) != len(rows) {
		t.Fatalf("%d rows, %v", len(got), err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, s := range []string{"csv", "jsonl", "parquet"} {
		if f, err := table.ParseFormat(s); err != nil || string(f) != s {
			t.Errorf("%s: %v %v", s, f, err)
		}
	}
	if _, err := table.ParseFormat("xlsx"); err == nil {
		t.Error("xlsx accepted")
	}
}

// TestHoldoutVariation: the synonym some configurations use is stored in
// the table's one form; other values are kept.
func TestHoldoutVariation(t *testing.T) {
	for in, want := range map[string]string{"all_shipped_variants": "all_shipped", "all_shipped": "all_shipped",
		"status_quo": "status_quo", "": "", "other": "other"} {
		if got := table.HoldoutVariation(in); got != want {
			t.Errorf("HoldoutVariation(%q) = %q, want %q", in, got, want)
		}
	}
}
