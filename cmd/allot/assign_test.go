package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
	"github.com/allot-dev/allot/internal/eval"
)

func readTable(t *testing.T, data string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, data)
	}
	if strings.Join(rows[0], ",") != strings.Join(table.Columns, ",") {
		t.Fatalf("header %v", rows[0])
	}
	return rows[1:]
}

// TestAssignMatchesEngine: every row of the table is what the engine says
// for that subject and its attributes, in input order, and subjects without
// an assignment are left out.
func TestAssignMatchesEngine(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join(fixtures, "flags-v1.json"))
	snap, err := eval.Load(data)
	if err != nil {
		t.Fatal(err)
	}
	countries := []string{"US", "Canada", "Germany", "", "Mexico"}
	var in strings.Builder
	in.WriteString("\ufeffuser,country,email,age\n")
	type subj struct {
		key   string
		attrs map[string]any
	}
	var subs []subj
	for i := range 20000 {
		key := fmt.Sprintf("user-%d", i)
		c := countries[i%len(countries)]
		email := fmt.Sprintf("u%d@example.com", i)
		if i%7 == 0 {
			email = fmt.Sprintf("u%d@mycompany.com", i)
		}
		fmt.Fprintf(&in, "%s,%s,%s,%d\n", key, c, email, 20+i%50)
		attrs := map[string]any{"email": email, "age": float64(20 + i%50)}
		if c != "" {
			attrs["country"] = c
		}
		subs = append(subs, subj{key, attrs})
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	code, out, stderr := runCmd(t, in.String(), "assign", "--flag", "new-user-onboarding", "--subjects", "-",
		"--config", filepath.Join(fixtures, "flags-v1.json"), "--now", at.Format(time.RFC3339))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := readTable(t, out)
	i := 0
	for _, s := range subs {
		r := snap.Evaluate("new-user-onboarding", s.key, s.attrs, "", at)
		if r.Code != eval.Match {
			continue
		}
		if i >= len(rows) {
			t.Fatalf("table ends at row %d", i)
		}
		// The export's columns, with its microsecond times; no event id or
		// environment (no SDK sent these), every cell in the attributes.
		want := []string{"", "", "new-user-onboarding-" + r.AllocationKey(), "new-user-onboarding", r.AllocationKey(), r.VariationKey(), s.key,
			rows[i][7], "2026-06-01T00:00:00Z", "allot assign", "", "2026-06-01T00:00:00Z", "", ""}
		if strings.Join(rows[i], "|") != strings.Join(want, "|") {
			t.Fatalf("row %d: %v, want %v", i, rows[i], want)
		}
		var attrs map[string]any
		if err := json.Unmarshal([]byte(rows[i][7]), &attrs); err != nil || fmt.Sprint(attrs) != fmt.Sprint(s.attrs) {
			t.Fatalf("row %d: subject_attributes %s (%v), want %v", i, rows[i][7], err, s.attrs)
		}
		i++
	}
	if i != len(rows) || i == 0 || i == len(subs) {
		t.Fatalf("%d rows, %d assigned of %d subjects", len(rows), i, len(subs))
	}
}

func TestAssignAllQuotedAndMalformed(t *testing.T) {
	in := "id,Force Empty\n" +
		"\"alice, the first\",true\n" + // quoted subject with a comma
		"\"bob\nsmith\",\n" + // a newline inside quotes
		"\"broken,true\n" + // unterminated quote: the rest of the file is one bad record
		""
	dir := t.TempDir()
	out := filepath.Join(dir, "table.csv")
	code, _, stderr := runCmd(t, in, "assign", "--flag", "json-config-flag", "--subjects", "-", "--all",
		"--config", filepath.Join(fixtures, "flags-v1.json"), "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, _ := os.ReadFile(out)
	rows := readTable(t, string(data))
	if len(rows) != 2 {
		t.Fatalf("rows %q", rows)
	}
	if rows[0][6] != "alice, the first" || rows[0][5] != "empty" || rows[1][6] != "bob\nsmith" {
		t.Fatalf("rows %q", rows)
	}
	if !strings.Contains(stderr, "skipped 1 malformed rows") {
		t.Fatalf("stderr %q should report the bad row", stderr)
	}
}

func TestAssignAllKeepsUnassigned(t *testing.T) {
	in := "subject,email,country\nalice,alice@mycompany.com,US\nbob,bob@example.com,US\n"
	code, out, stderr := runCmd(t, in, "assign", "--flag", "new-user-onboarding", "--subjects", "-", "--all",
		"--config", filepath.Join(fixtures, "flags-v1.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := readTable(t, out)
	if len(rows) != 2 || rows[0][5] != "green" || rows[1][6] != "bob" || rows[1][2] != "" || rows[1][4] != "" || rows[1][5] != "" {
		t.Fatalf("rows %q", rows)
	}
}

func TestAssignFromServer(t *testing.T) {
	data, _ := os.ReadFile(filepath.Join(fixtures, "flags-v1.json"))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/flag-config/v1/config" || r.URL.Query().Get("apiKey") != "good-key" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	in := "subject,country\nalice,US\n"
	code, out, stderr := runCmd(t, in, "assign", "--flag", "kill-switch", "--subjects", "-", "--server", srv.URL, "--sdk-key", "good-key")
	if code != 0 || len(readTable(t, out)) != 1 {
		t.Fatalf("exit %d: %s\n%s", code, stderr, out)
	}
	code, _, stderr = runCmd(t, in, "assign", "--flag", "kill-switch", "--subjects", "-", "--server", srv.URL, "--sdk-key", "bad-key")
	if code == 0 || !strings.Contains(stderr, "401") || strings.Contains(stderr, "bad-key") {
		t.Fatalf("exit %d, stderr %q: want a 401 that does not echo the key", code, stderr)
	}
}

func TestAssignUsage(t *testing.T) {
	for _, args := range [][]string{
		{"assign"},
		{"assign", "--flag", "f", "--subjects", "-"},
		{"assign", "--flag", "f", "--subjects", "-", "--config", "x", "--server", "y"},
		{"assign", "--flag", "f", "--subjects", "-", "--server", "http://x"},
	} {
		if code, _, _ := runCmd(t, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	code, _, stderr := runCmd(t, "s\n", "assign", "--flag", "nope", "--subjects", "-", "--config", filepath.Join(fixtures, "flags-v1.json"))
	if code != 1 || !strings.Contains(stderr, `flag "nope" is not in the configuration`) {
		t.Errorf("unknown flag: exit %d, %q", code, stderr)
	}
}

func TestAssignParquet(t *testing.T) {
	in := "subject,email,n\nalice,alice@mycompany.com,1.5\nbob,bob@example.com,\n\"c, d\",x@mycompany.com,\"a \"\"b\"\"\"\n"
	out := filepath.Join(t.TempDir(), "table.parquet")
	code, _, stderr := runCmd(t, in, "assign", "--flag", "new-user-onboarding", "--subjects", "-", "--all",
		"--config", filepath.Join(fixtures, "flags-v1.json"), "--out", out, "--now", "2026-06-01T10:00:00.5000019Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := table.ReadParquet(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Microseconds, as in an export (the old table kept milliseconds).
	at := time.Date(2026, 6, 1, 10, 0, 0, 500001000, time.UTC)
	flag := "new-user-onboarding"
	want := []table.Row{
		{Experiment: flag + "-internal users", FeatureFlag: flag, Allocation: "internal users", Variation: "green", Subject: "alice",
			SubjectAttributes: []byte(`{"email":"alice@mycompany.com","n":1.5}`)},
		{FeatureFlag: flag, Subject: "bob", SubjectAttributes: []byte(`{"email":"bob@example.com"}`)},
		{Experiment: flag + "-internal users", FeatureFlag: flag, Allocation: "internal users", Variation: "green", Subject: "c, d",
			SubjectAttributes: []byte(`{"email":"x@mycompany.com","n":"a \"b\""}`)},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v", rows)
	}
	for i := range want {
		want[i].Timestamp, want[i].ReceivedAt, want[i].SDKName = at, at, "allot assign"
		if fmt.Sprintf("%+v", rows[i]) != fmt.Sprintf("%+v", want[i]) || string(rows[i].SubjectAttributes) != string(want[i].SubjectAttributes) {
			t.Errorf("row %d: %+v %s\nwant %+v %s", i, rows[i], rows[i].SubjectAttributes, want[i], want[i].SubjectAttributes)
		}
	}
}

// TestAssignStrayQuote: a quote inside an unquoted field makes its row
// malformed (reported) and leaves the rows after it alone.
func TestAssignStrayQuote(t *testing.T) {
	var in strings.Builder
	in.WriteString("subject,device\n")
	for i := range 5000 {
		device := "phone"
		if i == 5 {
			device = `5" tablet`
		}
		fmt.Fprintf(&in, "u%d,%s\n", i, device)
	}
	code, out, stderr := runCmd(t, in.String(), "assign", "--flag", "kill-switch", "--subjects", "-", "--all",
		"--config", filepath.Join(fixtures, "flags-v1.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if rows := readTable(t, out); len(rows) != 4999 {
		t.Fatalf("%d rows, want 4999 (all but the malformed one)", len(rows))
	}
	if !strings.Contains(stderr, "skipped 1 malformed rows") || !strings.Contains(stderr, "quote inside an unquoted field") {
		t.Fatalf("stderr %q should report the one bad row", stderr)
	}
}

// holdoutConfig is a flag whose first allocation is a 20 % holdout compiled
// as Eppo's servers do (traffic and half shards, extraLogging), one half
// logged with the synonym all_shipped_variants, before an experiment.
const holdoutConfig = `{"format":"SERVER","createdAt":"2026-05-01T00:00:00Z","environment":{"name":"production"},"flags":{
 "checkout":{"key":"checkout","enabled":true,"variationType":"STRING","totalShards":10000,
  "variations":{"control":{"key":"control","value":"blue"},"treatment":{"key":"treatment","value":"green"}},
  "allocations":[
   {"key":"exp-q3","doLog":true,"splits":[
    {"variationKey":"control","shards":[{"salt":"q3-holdout-traffic","ranges":[{"start":0,"end":2000}]},{"salt":"q3-holdout-split","ranges":[{"start":0,"end":5000}]}],
     "extraLogging":{"holdoutKey":"q3","holdoutVariation":"status_quo"}},
    {"variationKey":"treatment","shards":[{"salt":"q3-holdout-traffic","ranges":[{"start":0,"end":2000}]},{"salt":"q3-holdout-split","ranges":[{"start":5000,"end":10000}]}],
     "extraLogging":{"holdoutKey":"q3","holdoutVariation":"all_shipped_variants"}}]},
   {"key":"exp","doLog":true,"splits":[
    {"variationKey":"control","shards":[{"salt":"checkout-exp","ranges":[{"start":0,"end":5000}]}]},
    {"variationKey":"treatment","shards":[{"salt":"checkout-exp","ranges":[{"start":5000,"end":10000}]}]}]}]}}}`

// TestAssignHoldout: allot assign fills holdout and holdout_variation from
// the matched split's extraLogging (all_shipped_variants as all_shipped),
// in CSV and Parquet alike, and leaves them empty outside the holdout.
func TestAssignHoldout(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(holdoutConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	var in strings.Builder
	in.WriteString("subject\n")
	const n = 2000
	for i := range n {
		fmt.Fprintf(&in, "user-%d\n", i)
	}
	code, out, stderr := runCmd(t, in.String(), "assign", "--flag", "checkout", "--subjects", "-", "--config", cfg, "--now", "2026-06-01T00:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := readTable(t, out)
	if len(rows) != n {
		t.Fatalf("%d rows", len(rows))
	}
	count := map[string]int{}
	for _, r := range rows {
		alloc, variation, holdout, half := r[4], r[5], r[12], r[13]
		switch {
		case alloc == "exp-q3" && holdout == "q3" && half == "status_quo" && variation == "control",
			alloc == "exp-q3" && holdout == "q3" && half == "all_shipped" && variation == "treatment",
			alloc == "exp" && holdout == "" && half == "":
			count[alloc+"/"+half]++
		default:
			t.Fatalf("row %v", r)
		}
	}
	// 20 % held out, split in halves; loose bounds for 2,000 subjects.
	if h := count["exp-q3/status_quo"] + count["exp-q3/all_shipped"]; h < 300 || h > 500 || count["exp-q3/status_quo"] < 100 || count["exp-q3/all_shipped"] < 100 {
		t.Fatalf("holdout counts %v", count)
	}

	pq := filepath.Join(t.TempDir(), "table.parquet")
	if code, _, stderr := runCmd(t, in.String(), "assign", "--flag", "checkout", "--subjects", "-", "--config", cfg, "--out", pq,
		"--now", "2026-06-01T00:00:00Z"); code != 0 {
		t.Fatalf("parquet: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(pq)
	if err != nil {
		t.Fatal(err)
	}
	prows, err := table.ReadParquet(bytes.NewReader(data), int64(len(data)))
	if err != nil || len(prows) != n {
		t.Fatalf("parquet: %d rows, %v", len(prows), err)
	}
	for i, r := range prows {
		if r.Subject != rows[i][6] || r.Holdout != rows[i][12] || r.HoldoutVariation != rows[i][13] {
			t.Fatalf("parquet row %d %+v, CSV %v", i, r, rows[i])
		}
	}
}
