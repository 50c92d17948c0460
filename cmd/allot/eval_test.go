package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/allot-dev/allot/internal/ufctest"
)

const fixtures = "../../testdata/ufc"

// runCmd runs allot in-process and returns its exit code, stdout and stderr.
func runCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}, args)
	return code, out.String(), errOut.String()
}

type evalResult struct {
	Value      any     `json:"value"`
	Variation  *string `json:"variation"`
	Allocation *string `json:"allocation"`
	Reason     string  `json:"reason"`
	Log        *bool   `json:"log"`
	Error      string  `json:"error"`
}

func decodeResults(t *testing.T, out string) []evalResult {
	t.Helper()
	var res []evalResult
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r evalResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("output line %q is not JSON: %v", sc.Text(), err)
		}
		res = append(res, r)
	}
	return res
}

// TestEvalFixtures runs all 225 shared fixture checks through allot eval.
func TestEvalFixtures(t *testing.T) {
	evalCases(t, filepath.Join(fixtures, "flags-v1.json"), ufctest.Cases(t))
}

// TestEvalDialects runs the newer dialect's regression fixtures
// (internal/eval/testdata/dialects) through allot eval.
func TestEvalDialects(t *testing.T) {
	dir := "../../internal/eval/testdata/dialects"
	files, err := filepath.Glob(filepath.Join(dir, "tests", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dialect fixtures: %v", err)
	}
	var cases []ufctest.Case
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c ufctest.Case
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		c.File = filepath.Base(f)
		cases = append(cases, c)
	}
	evalCases(t, filepath.Join(dir, "flags-dialect.json"), cases)
}

// evalCases runs fixture cases through allot eval on config and checks the
// reason, value, variation and allocation of every result. The variation and
// allocation are expected whenever the fixture names them: with MATCH, and
// with ASSIGNMENT_ERROR when the subject reached an unusable variation.
func evalCases(t *testing.T, config string, cases []ufctest.Case) {
	t.Helper()
	type expect struct {
		name, reason string
		variation    string
		allocation   string
		value        any
	}
	var in strings.Builder
	var want []expect
	for _, c := range cases {
		var def bytes.Buffer
		json.Compact(&def, c.DefaultValue)
		for _, s := range c.Subjects {
			attrs, _ := json.Marshal(s.SubjectAttributes)
			fmt.Fprintf(&in, `{"flag":%q,"subject":%q,"attributes":%s,"type":%q,"default":%s}`+"\n",
				c.Flag, s.SubjectKey, attrs, c.VariationType, def.Bytes())
			var value any
			json.Unmarshal(s.Assignment, &value)
			want = append(want, expect{name: c.File + "/" + s.SubjectKey, reason: s.EvaluationDetails.FlagEvaluationCode, value: value,
				variation: s.EvaluationDetails.Variation(), allocation: s.EvaluationDetails.Allocation()})
		}
	}
	code, out, stderr := runCmd(t, in.String(), "eval", "--config", config, "--now", "2026-06-01T00:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := decodeResults(t, out)
	if len(got) != len(want) {
		t.Fatalf("%d results for %d requests", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		if g.Reason != w.reason || str(g.Variation) != w.variation || str(g.Allocation) != w.allocation || !reflect.DeepEqual(g.Value, w.value) || g.Log == nil {
			t.Errorf("%s: got %+v (variation %q, allocation %q), want %+v", w.name, g, str(g.Variation), str(g.Allocation), w)
		}
	}
}

func TestEvalMalformedLinesContinue(t *testing.T) {
	in := strings.Join([]string{
		`{"flag":"kill-switch","subject":"alice","attributes":{"country":"US"},"type":"BOOLEAN","default":false}`,
		`not json`,
		`{"subject":"a"}`,
		`{"flag":"kill-switch"}`,
		`{"flag":"kill-switch","subject":"a","type":"COLOR"}`,
		`{"flag":"kill-switch","subject":"a","type":"BOOLEAN","default":"yes"}`,
		``,
		`{"flag":"kill-switch","subject":"bob","attributes":{"country":"Canada"},"type":"BOOLEAN","default":false}`,
	}, "\n")
	code, out, stderr := runCmd(t, in, "eval", "--config", filepath.Join(fixtures, "flags-v1-obfuscated.json"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := decodeResults(t, out)
	if len(got) != 8 {
		t.Fatalf("%d output lines for 8 input lines:\n%s", len(got), out)
	}
	if got[0].Value != true || got[0].Reason != "MATCH" || got[7].Value != true {
		t.Fatalf("valid requests around bad ones: %+v / %+v", got[0], got[7])
	}
	for i, frag := range map[int]string{1: "malformed request", 2: `"flag" is required`, 3: `"subject" is required`, 4: `"type"`, 5: `does not fit type BOOLEAN`, 6: "malformed request"} {
		if !strings.Contains(got[i].Error, frag) {
			t.Errorf("line %d: error %q, want it to mention %q", i+1, got[i].Error, frag)
		}
	}
}

func TestEvalBadConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"flags": {"a": {"key": "a",}}}`), 0o644)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"eval"}, 2, "--config is required"},
		{[]string{"eval", "--config", filepath.Join(dir, "missing.json")}, 1, "no such file"},
		{[]string{"eval", "--config", bad}, 1, "line 1, column"},
		{[]string{"eval", "--config", bad, "--now", "tomorrow"}, 2, "-now"},
	} {
		code, out, stderr := runCmd(t, `{"flag":"a","subject":"b"}`, c.args...)
		if code != c.code || !strings.Contains(stderr, c.msg) || out != "" {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d mentioning %q", c.args, code, stderr, out, c.code, c.msg)
		}
	}
}

func TestEvalManyLinesInOrder(t *testing.T) {
	var in strings.Builder
	const n = 50000
	for i := range n {
		fmt.Fprintf(&in, `{"flag":"new-user-onboarding","subject":"user-%d","attributes":{"country":"Germany"},"type":"STRING","default":"none"}`+"\n", i)
	}
	code, out, _ := runCmd(t, in.String(), "eval", "--config", filepath.Join(fixtures, "flags-v1.json"))
	if code != 0 {
		t.Fatal("eval failed")
	}
	got := decodeResults(t, out)
	if len(got) != n {
		t.Fatalf("%d results, want %d", len(got), n)
	}
	// Recompute a sample one request at a time: the parallel run must give
	// the same answer on the same line.
	for _, i := range []int{0, 1, 777, 31337, n - 1} {
		line := fmt.Sprintf(`{"flag":"new-user-onboarding","subject":"user-%d","attributes":{"country":"Germany"},"type":"STRING","default":"none"}`, i)
		_, one, _ := runCmd(t, line, "eval", "--config", filepath.Join(fixtures, "flags-v1.json"))
		if r := decodeResults(t, one)[0]; !reflect.DeepEqual(r, got[i]) {
			t.Fatalf("line %d: parallel %+v, alone %+v", i, got[i], r)
		}
	}
}

func TestHelpAndBadFlags(t *testing.T) {
	for _, cmd := range []string{"eval", "assign", "serve", "export", "flags"} {
		if code, _, stderr := runCmd(t, "", cmd, "-h"); code != 0 || !strings.Contains(stderr, "usage") {
			t.Errorf("%s -h: exit %d, %q", cmd, code, stderr)
		}
		if code, _, _ := runCmd(t, "", cmd, "--no-such-flag"); code != 2 {
			t.Errorf("%s --no-such-flag: exit %d, want 2", cmd, code)
		}
	}
}
