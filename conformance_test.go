package allot

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/ufc"
	"github.com/allot-dev/allot/internal/ufctest"
)

func decode(t *testing.T, raw []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	return v
}

// getTyped calls the typed getter for typ with the fixture's default and
// returns its value (as encoding/json would decode it) and details.
func getTyped(t *testing.T, c *Client, typ ufc.VariationType, flag, subject string, attrs Attributes, def json.RawMessage) (any, Details) {
	t.Helper()
	switch typ {
	case ufc.TypeString:
		var d string
		_ = json.Unmarshal(def, &d)
		got := c.GetStringAssignment(flag, subject, attrs, d)
		v, det := c.GetStringAssignmentDetails(flag, subject, attrs, d)
		if v != got {
			t.Errorf("%s/%s: details value %q, plain %q", flag, subject, v, got)
		}
		return got, det
	case ufc.TypeInteger:
		var d int64
		_ = json.Unmarshal(def, &d)
		got := c.GetIntegerAssignment(flag, subject, attrs, d)
		v, det := c.GetIntegerAssignmentDetails(flag, subject, attrs, d)
		if v != got {
			t.Errorf("%s/%s: details value %d, plain %d", flag, subject, v, got)
		}
		return float64(got), det
	case ufc.TypeNumeric:
		var d float64
		_ = json.Unmarshal(def, &d)
		got := c.GetNumericAssignment(flag, subject, attrs, d)
		v, det := c.GetNumericAssignmentDetails(flag, subject, attrs, d)
		if v != got {
			t.Errorf("%s/%s: details value %v, plain %v", flag, subject, v, got)
		}
		return got, det
	case ufc.TypeBoolean:
		var d bool
		_ = json.Unmarshal(def, &d)
		got := c.GetBoolAssignment(flag, subject, attrs, d)
		v, det := c.GetBoolAssignmentDetails(flag, subject, attrs, d)
		if v != got {
			t.Errorf("%s/%s: details value %v, plain %v", flag, subject, v, got)
		}
		return got, det
	case ufc.TypeJSON:
		d := decode(t, def)
		got := c.GetJSONAssignment(flag, subject, attrs, d)
		v, det := c.GetJSONAssignmentDetails(flag, subject, attrs, d)
		if !reflect.DeepEqual(v, got) {
			t.Errorf("%s/%s: details value %v, plain %v", flag, subject, v, got)
		}
		raw := c.GetJSONBytesAssignment(flag, subject, attrs, def)
		if fromBytes := decode(t, raw); !reflect.DeepEqual(fromBytes, got) {
			t.Errorf("%s/%s: bytes getter %s, parsed getter %v", flag, subject, raw, got)
		}
		return got, det
	}
	t.Fatalf("unknown type %s", typ)
	return nil, Details{}
}

// TestConformanceOverHTTP serves the shared fixtures from an HTTP server,
// plain and obfuscated, and checks all 225 subjects through the typed
// getters, GetAssignment and the assignment logger.
func TestConformanceOverHTTP(t *testing.T) {
	cases := ufctest.Cases(t)
	for _, doc := range []string{"flags-v1.json", "flags-v1-obfuscated.json"} {
		t.Run(doc, func(t *testing.T) {
			body := ufctest.Document(t, doc)
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				if r.URL.Path != "/api/flag-config/v1/config" || r.URL.Query().Get("apiKey") != "test-key" ||
					r.URL.Query().Get("sdkName") != SDKName || r.URL.Query().Get("sdkVersion") != Version {
					http.Error(w, "bad request "+r.URL.Path, http.StatusNotFound)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body)
			}))
			defer srv.Close()
			rec := &recorder{}
			cfg := Config{SDKKey: "test-key", BaseURL: srv.URL + "/api/", AssignmentLogger: rec, DisableDedup: true}
			cfg.now = func() time.Time { return fixedNow }
			c, err := NewClient(context.Background(), cfg)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			closeClient(t, c)
			if st := c.Status(); !st.Ready || st.Source != SourceServer || st.Environment != "Test" || st.Flags != 22 {
				t.Fatalf("status %+v", st)
			}

			checks, matches := 0, 0
			for _, fc := range cases {
				for _, s := range fc.Subjects {
					checks++
					name := fc.File + "/" + s.SubjectKey
					attrs := Attributes(s.SubjectAttributes)
					got, det := getTyped(t, c, fc.VariationType, fc.Flag, s.SubjectKey, attrs, fc.DefaultValue)
					if want := decode(t, s.Assignment); !reflect.DeepEqual(got, want) {
						t.Errorf("%s: value %#v, want %#v", name, got, want)
					}
					want := s.EvaluationDetails
					if string(det.Code) != want.FlagEvaluationCode {
						t.Errorf("%s: code %s, want %s (%s)", name, det.Code, want.FlagEvaluationCode, det.Reason)
					}
					wantVar, wantAlloc := want.Variation(), want.Allocation()
					if det.Variation != wantVar || det.Allocation != wantAlloc {
						t.Errorf("%s: variation %q allocation %q, want %q %q", name, det.Variation, det.Allocation, wantVar, wantAlloc)
					}
					v, ok := c.GetAssignment(fc.Flag, s.SubjectKey, attrs)
					if isMatch := want.FlagEvaluationCode == "MATCH"; ok != isMatch || (ok && v != wantVar) {
						t.Errorf("%s: GetAssignment = %q, %v; want %q, %v", name, v, ok, wantVar, isMatch)
					}
					if want.FlagEvaluationCode == "MATCH" {
						matches++
					}
				}
			}
			if checks != ufctest.Checks {
				t.Errorf("ran %d subject checks, want 225", checks)
			}
			if err := c.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Each matching subject was assigned through two typed calls
			// (three for JSON) and GetAssignment; every match logs, since
			// every fixture allocation logs and dedup is off.
			if n := len(rec.all()); n < 3*matches {
				t.Errorf("%d events for %d matches, want at least %d", n, matches, 3*matches)
			}
			if requests.Load() < 1 {
				t.Errorf("no request reached the server")
			}
		})
	}
}

// TestGettersOddInputs: odd keys and attribute values of any type give
// defaults or assignments, never a panic.
func TestGettersOddInputs(t *testing.T) {
	var nilClient *Client
	if v, d := nilClient.GetBoolAssignmentDetails("f", "s", nil, true); !v || d.Code != CodeFlagUnrecognizedOrDisabled {
		t.Errorf("nil client: %v %+v", v, d)
	}
	_ = nilClient.Close(context.Background())
	_ = nilClient.Flush(context.Background())
	_ = nilClient.Status()

	cfg := Config{Offline: true, InitialConfiguration: ufctest.Document(t, "flags-v1.json"), AssignmentLogger: &recorder{}}
	c, err := NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeClient(t, c)
	odd := []Attributes{
		nil, {}, {"id": nil}, {"id": 42}, {"age": "not a number"}, {"age": []int{1}},
		{"country": map[string]any{"x": 1}}, {"version": struct{}{}}, {"email": []byte("a@b")},
		{"age": float64(1) / 3}, {"number": int8(-1)}, {"number": uint64(1 << 63)},
	}
	for _, flag := range []string{"", "kill-switch", "semver-test", "comparator-operator-test", "regex-flag", "null-operator-test", "json-config-flag", "numeric_flag", "integer-flag", "new-user-onboarding"} {
		for _, subject := range []string{"", "alice", "\x00\xff", strings.Repeat("x", 10_000)} {
			for _, a := range odd {
				c.GetAssignment(flag, subject, a)
				c.GetStringAssignment(flag, subject, a, "")
				c.GetBoolAssignment(flag, subject, a, false)
				c.GetIntegerAssignment(flag, subject, a, 0)
				c.GetNumericAssignment(flag, subject, a, 0)
				c.GetJSONAssignment(flag, subject, a, nil)
				c.GetJSONBytesAssignmentDetails(flag, subject, a, nil)
			}
		}
	}
	if v, d := c.GetStringAssignmentDetails("kill-switch", "", nil, "d"); v != "d" || d.Code != CodeTypeMismatch {
		t.Errorf("%q %+v", v, d)
	}
	// An empty subject key is an error only where a shard must be hashed
	// (docs/ufc-dialects.md): kill-switch's catch-all has no shard,
	// new-user-onboarding's experiment for Germany has one.
	if v, d := c.GetBoolAssignmentDetails("kill-switch", "", nil, true); v || d.Code != CodeMatch {
		t.Errorf("empty subject, no shard: %v %+v", v, d)
	}
	if v, d := c.GetStringAssignmentDetails("new-user-onboarding", "", Attributes{"country": "Germany"}, "d"); v != "d" || d.Code != CodeAssignmentError {
		t.Errorf("empty subject, shard: %q %+v", v, d)
	}
}
