package httpapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/publish"
)

// TestStreamEventInlineThreshold: a document of up to StreamInlineMax bytes
// travels inside the event, a larger one does not; either way the event is
// one id line and one data line, and is encoded once per configuration.
func TestStreamEventInlineThreshold(t *testing.T) {
	doc := func(n int) []byte {
		pad := strings.Repeat("x", n-len(`{"flags":{},"p":""}`))
		return []byte(`{"flags":{},"p":"` + pad + `"}`)
	}
	var st streams
	st.init()
	for _, tc := range []struct {
		size   int
		inline bool
	}{{1 << 10, true}, {StreamInlineMax, true}, {StreamInlineMax + 1, false}} {
		p := &publish.Published{Environment: "e", ETag: `"t` + strconv.Itoa(tc.size) + `"`, Body: doc(tc.size)}
		rep := publish.Representation{Body: p.Body, ETag: p.ETag}
		ev := st.event(p, rep, false)
		lines := bytes.Split(bytes.TrimSuffix(ev, []byte("\n\n")), []byte("\n"))
		if len(lines) != 2 || string(lines[0]) != "id: "+p.ETag || !bytes.HasPrefix(lines[1], []byte("data: ")) {
			t.Fatalf("size %d: event %.200q", tc.size, ev)
		}
		var m struct {
			ETag   string          `json:"etag"`
			Config json.RawMessage `json:"config"`
		}
		if err := json.Unmarshal(lines[1][len("data: "):], &m); err != nil || m.ETag != p.ETag {
			t.Fatalf("size %d: %v %+v", tc.size, err, m.ETag)
		}
		if got := len(m.Config) > 0; got != tc.inline || got && !bytes.Equal(m.Config, p.Body) {
			t.Errorf("size %d: inline %v, want %v (%d vs %d bytes)", tc.size, got, tc.inline, len(m.Config), len(p.Body))
		}
		if again := st.event(p, rep, false); &again[0] != &ev[0] {
			t.Errorf("size %d: encoded again for the same configuration", tc.size)
		}
	}
}
