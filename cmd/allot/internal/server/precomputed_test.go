package server_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// TestPrecomputedThroughTheServer: the precomputed endpoint behind the
// whole server (middleware, CORS), at both paths, for a client key from an
// allowed origin and a server key; a disallowed origin is refused before
// anything is computed.
func TestPrecomputedThroughTheServer(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			s, serverKey, clientKey, _ := clientSetup(t, dialect)
			body := `{"subject_key":"user-1","subject_attributes":{"numericAttributes":{"age":30},"categoricalAttributes":{"country":"NL"}}}`
			for _, path := range []string{"/assignments", "/api/assignments"} {
				url := s.URL() + path + "?apiKey=" + clientKey.Secret + "&sdkName=js-client-sdk&sdkVersion=4.14.4"
				code, h, _ := do(t, nil, "OPTIONS", url, "", nil, "Origin", pageOrigin, "Access-Control-Request-Method", "POST",
					"Access-Control-Request-Headers", "content-type")
				if code != 204 || h.Get("Access-Control-Allow-Origin") != pageOrigin || h.Get("Access-Control-Allow-Methods") != "POST" {
					t.Fatalf("%s preflight: %d %v", path, code, h)
				}
				code, h, out := do(t, nil, "POST", url, "", strings.NewReader(body), "Origin", pageOrigin, "Content-Type", "application/json")
				if code != 200 || h.Get("Access-Control-Allow-Origin") != pageOrigin {
					t.Fatalf("%s: %d %v %s", path, code, h, out)
				}
				var pc ufc.Precomputed
				if err := json.Unmarshal([]byte(out), &pc); err != nil {
					t.Fatal(err)
				}
				f, ok := pc.Flags[ufc.SaltedFlagKey(pc.Salt, "checkout-button")]
				if !ok || len(pc.Flags) != 1 {
					t.Fatalf("%s: flags %v", path, pc.Flags)
				}
				v, _ := base64.StdEncoding.DecodeString(f.VariationValue)
				a, _ := base64.StdEncoding.DecodeString(f.AllocationKey)
				if string(v) != "green" || string(a) != "dutch" {
					t.Fatalf("%s: the Dutch adult got %s through %s, want green through dutch", path, v, a)
				}
				if strings.Contains(out, "checkout-button") || strings.Contains(out, "country") {
					t.Fatalf("%s: plain names in the answer: %s", path, out)
				}
			}
			// A disallowed origin: refused, no CORS headers.
			code, h, _ := do(t, nil, "POST", s.URL()+"/assignments?apiKey="+clientKey.Secret, "", strings.NewReader(body), "Origin", otherOrigin)
			if code != http.StatusForbidden || h.Get("Access-Control-Allow-Origin") != "" {
				t.Fatalf("disallowed origin: %d %v", code, h)
			}
			// A server key (a back end rendering a page) may call it too.
			code, _, out := do(t, nil, "POST", s.URL()+"/api/assignments?apiKey="+serverKey.Secret, "", strings.NewReader(body))
			if code != 200 || !strings.Contains(out, `"format":"PRECOMPUTED"`) {
				t.Fatalf("server key: %d %s", code, out)
			}
		})
	}
}
