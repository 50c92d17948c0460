package ingest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/allot-dev/allot"
)

var decodeSeeds = []string{
	`{"eventId":"e1","featureFlag":"f","allocation":"a","experiment":"f-a","variation":"v","subject":"s","subjectAttributes":{"country":"US","n":1},"timestamp":"2026-05-01T12:00:00.123Z","metaData":{"sdkName":"go-allot","sdkVersion":"0.1.0"},"extraLogging":{"x":"y"}}`,
	` { "eventId" : "e1" , "subject" : "caf\u00e9" } `,
	`{"eventId":"e\"1","subject":"s"}`,
	`{"eventId":"e1","EventID":"e2"}`,
	`{"eventId":"e1","eventId":"e2"}`,
	`{"eventId":null,"subject":"s"}`,
	`{"eventId":1}`,
	`{"timestamp":"2026-05-01T25:00:00Z"}`,
	`{"timestamp":"not a time"}`,
	`{"subjectAttributes":[1]}`,
	`{"subjectAttributes":{"a":}}`,
	`{"metaData":{"sdkName":"x","sdkname":"y"}}`,
	`{"metaData":{"sdkName":1}}`,
	`{"evaluationDetails":{"a":[1,2,{"b":null}]},"subject":"s"}`,
	`{"subject":"s",}`,
	`{"subject":"s"} x`,
	`{}`,
	`[]`,
	`{"subject":"s","extraLogging":{"holdoutKey":"h","holdoutVariation":"status_quo","x":[1,{"y":null}]}}`,
	`{"subject":"s","holdoutKey":"h","holdoutVariation":"all_shipped_variants"}`,
	`{"subject":"s","extraLogging":{"holdoutKey":"h","holdoutKey":"i"}}`,
	`{"subject":"s","extraLogging":{"holdoutKey":1,"holdoutVariation":null}}`,
	`{"subject":"s","extraLogging":"not an object"}`,
	`{"subject":"s","extraLogging":null}`,
	`{"subject":"s","extraLogging":{"a":1},"extraLogging":{"holdoutKey":"h"}}`,
	`{"subject":"s","holdoutKey":5,"HoldoutVariation":"x"}`,
	`{"subject":"s","holdoutkey":"h","holdoutKey":"i"}`,
	`{"subject":"\xff"}`,
	`{"subject":"a` + "\t" + `b"}`,
}

// FuzzDecodeEvent: the fast decoder agrees with json.Unmarshal on every
// input it accepts, and decodeEvent as a whole gives json.Unmarshal's
// result and error.
func FuzzDecodeEvent(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want wireEvent
		wantErr := json.Unmarshal(raw, &want)
		var fast wireEvent
		if fastDecode(raw, &fast) {
			if wantErr != nil {
				t.Fatalf("fast path accepted %q; json: %v", raw, wantErr)
			}
			if !equalEvents(fast, want) {
				t.Fatalf("fast path on %q:\n%+v\njson:\n%+v", raw, fast, want)
			}
		}
		var got wireEvent
		gotErr := decodeEvent(raw, &got)
		if (gotErr == nil) != (wantErr == nil) || gotErr == nil && !equalEvents(got, want) {
			t.Fatalf("decodeEvent(%q) = %+v, %v; json: %+v, %v", raw, got, gotErr, want, wantErr)
		}
	})
}

func equalEvents(a, b wireEvent) bool {
	if string(a.SubjectAttributes) != string(b.SubjectAttributes) || !a.Timestamp.Equal(b.Timestamp) {
		return false
	}
	a.SubjectAttributes, b.SubjectAttributes = nil, nil
	a.Timestamp, b.Timestamp = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// TestSDKEventDecodes: what the Go SDK's HTTP logger sends (an
// allot.AssignmentEvent marshalled) decodes to the same fields, by the
// fast path.
func TestSDKEventDecodes(t *testing.T) {
	ev := allot.AssignmentEvent{EventID: "0190-abc", FeatureFlag: "checkout", Allocation: "spring", Experiment: "checkout-spring",
		Variation: "treatment", Subject: "user-42", SubjectAttributes: allot.Attributes{"country": "US", "age": 30},
		Timestamp: time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC), ExtraLogging: map[string]string{"owner": "x"},
		MetaData: map[string]string{"sdkLanguage": "go", "sdkVersion": "0.1.0"}}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var e wireEvent
	if !fastDecode(raw, &e) {
		t.Fatalf("the SDK's event %s takes the slow path", raw)
	}
	if e.EventID != ev.EventID || e.FeatureFlag != ev.FeatureFlag || e.Allocation != ev.Allocation || e.Experiment != ev.Experiment ||
		e.Variation != ev.Variation || e.Subject != ev.Subject || !e.Timestamp.Equal(ev.Timestamp) ||
		string(e.SubjectAttributes) != `{"age":30,"country":"US"}` || e.MetaData.SDKLanguage != "go" || e.MetaData.SDKVersion != "0.1.0" {
		t.Fatalf("decoded %+v from %s", e, raw)
	}
}

// TestHoldoutEventsDecodeFast: events with a holdout, nested or spread,
// stay on the fast path (they are a holdout's share of all traffic).
func TestHoldoutEventsDecodeFast(t *testing.T) {
	for _, raw := range []string{
		`{"subject":"s","extraLogging":{"holdoutKey":"h","holdoutVariation":"status_quo","x":[1]}}`,
		`{"subject":"s","holdoutKey":"h","holdoutVariation":"all_shipped_variants"}`,
	} {
		var e wireEvent
		if !fastDecode([]byte(raw), &e) {
			t.Fatalf("not on the fast path: %s", raw)
		}
		if k := e.ExtraLogging.Key + string(e.HoldoutKey); k != "h" {
			t.Fatalf("%s: holdout %q", raw, k)
		}
	}
}
