package allot

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
)

// trickyStrings exercise every escaping rule of encoding/json.
var trickyStrings = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnew\nline\rcr\bbs\fff",
	"\x00\x01\x1f\x7f", "héllo wörld ✓ 🎉", "bad \xff utf8 \xc3", "line\u2028sep\u2029para", "\u00e9",
}

func randomString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return trickyStrings[r.IntN(len(trickyStrings))]
	}
	b := make([]byte, r.IntN(12))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func randomValue(r *rand.Rand) any {
	switch r.IntN(9) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return randomString(r)
	case 3:
		return r.NormFloat64() * math.Pow(10, float64(r.IntN(50)-25))
	case 4:
		return float64(r.IntN(1000))
	case 5:
		return r.Int() - r.Int()
	case 6:
		return int64(r.Int64())
	case 7:
		return []any{"x", 1.5}
	default:
		return uint64(r.Uint64())
	}
}

func randomEvent(r *rand.Rand) AssignmentEvent {
	e := AssignmentEvent{
		EventID: newEventID(), FeatureFlag: randomString(r), Allocation: randomString(r), Experiment: randomString(r),
		Variation: randomString(r), Subject: randomString(r),
		Timestamp: time.Unix(r.Int64N(1<<34), r.Int64N(1e9)*int64(r.IntN(2))).UTC(),
		MetaData:  sdkMetaData,
	}
	if n := r.IntN(4); n > 0 {
		e.SubjectAttributes = Attributes{}
		for range n {
			e.SubjectAttributes[randomString(r)] = randomValue(r)
		}
	}
	if r.IntN(3) == 0 {
		e.ExtraLogging = map[string]string{randomString(r): randomString(r), "b": randomString(r)}
	}
	if r.IntN(5) == 0 {
		e.MetaData = map[string]string{"sdkLanguage": "python", "sdkName": randomString(r)}
	}
	return e
}

// TestEventJSONMatchesEncodingJSON: the hand-written encoder writes what
// json.Marshal writes for the same AssignmentEvent, byte for byte, so the
// wire format the server decodes is unchanged.
func TestEventJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var enc eventEncoder
	for i := range 20000 {
		e := randomEvent(r)
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := enc.appendEvent(nil, &e)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("event %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestRecordJSONMatchesEvent: the fast path (records straight to JSON)
// writes the event the client gives other loggers, id aside.
func TestRecordJSONMatchesEvent(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rec := &recorder{}
	p := newEventProcessor(Config{AssignmentLogger: rec, EventQueueSize: 1024}.withDefaults())
	var enc eventEncoder
	for i := range 5000 {
		b := &batch{}
		alloc := &eval.Allocation{Key: randomString(r)}
		split := &eval.Split{VariationKey: randomString(r)}
		if r.IntN(3) == 0 {
			split.ExtraLogging = map[string]string{"k": randomString(r), randomString(r): "v"}
		}
		for range r.IntN(4) {
			b.attrs = append(b.attrs, attrKV{randomString(r), randomValue(r)})
		}
		b.recs = append(b.recs, record{flag: randomString(r), subject: randomString(r), alloc: alloc, split: split,
			at: time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).In(time.FixedZone("x", 3600)), attrHi: int32(len(b.attrs))})
		// Keys may repeat in a random batch; a caller's map cannot.
		seen := map[string]bool{}
		for _, a := range b.attrs {
			if seen[a.key] {
				b.attrs, b.recs[0].attrHi = nil, 0
				break
			}
			seen[a.key] = true
		}
		got, err := enc.appendRecord(nil, b, &b.recs[0])
		if err != nil {
			t.Fatal(err)
		}
		rec.events = nil
		p.deliver(b, &b.recs[0])
		e := rec.events[0]
		e.EventID = string(got[len(`{"eventId":"`):][:eventIDLen])
		want, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(want, '\n')) {
			t.Fatalf("record %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestEventIDsUnique: ids from the slab and from newEventID never repeat
// and keep the UUID shape, with the version 8 and variant bits.
func TestEventIDsUnique(t *testing.T) {
	seen := make(map[string]bool, 300_000)
	var s idSlab
	for i := range 300_000 {
		id := s.next()
		if i%2 == 0 {
			id = newEventID()
		}
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[14] != '8' || id[18] != '-' || id[23] != '-' ||
			!bytes.ContainsRune([]byte("89ab"), rune(id[19])) || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}
