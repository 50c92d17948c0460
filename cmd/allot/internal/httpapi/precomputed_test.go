package httpapi_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// precomputedServer serves the API on loopback over an environment of n
// seeded flags and returns its URL and a server key.
func precomputedServer(t testing.TB, n int, opts ...httpapi.Option) (string, string) {
	db := storetest.Open(t, "sqlite")
	key := seed(t, db, n)
	cache := publish.NewCache(db, nil)
	if err := cache.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mount(httpapi.New(db, cache, nil, opts...)))
	t.Cleanup(srv.Close)
	return srv.URL, key
}

func postPrecomputed(t testing.TB, url, body string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func unb64(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %q", s)
	}
	return string(b)
}

// TestPrecomputedAgreesWithTheSDKDocument posts subjects with attributes to
// both paths over real HTTP and checks every flag of the answer against the
// engine evaluating the SERVER document a Go SDK downloads: a flag is in
// the answer exactly when it assigns a variation, under MD5(salt + key),
// with base64 keys and values; and every answer has a fresh salt.
func TestPrecomputedAgreesWithTheSDKDocument(t *testing.T) {
	url, key := precomputedServer(t, 30, httpapi.WithPrecomputedRate(0, 0))
	resp := get(t, url+"/api/flag-config/v1/config?apiKey="+key, nil)
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	snap, err := eval.Load(doc)
	if err != nil {
		t.Fatal(err)
	}
	salts := map[string]bool{}
	matched := 0
	now := time.Now()
	for i := range 60 {
		subject := fmt.Sprintf("user-%d", i)
		country := []string{"US", "FR", "DE"}[i%3]
		version := []string{"2.0.0", "2.2.0"}[i/3%2]
		body := fmt.Sprintf(`{"subject_key":%q,"subject_attributes":{"numericAttributes":{"age":%d},"categoricalAttributes":{"country":%q,"version":%q}}}`,
			subject, 20+i, country, version)
		path := []string{"/assignments", "/api/assignments"}[i%2]
		code, hdr, out := postPrecomputed(t, url+path+"?apiKey="+key+"&sdkName=js-client-sdk&sdkVersion=4.14.4", body)
		if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") || hdr.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %v %s", path, code, hdr, out)
		}
		var pc ufc.Precomputed
		if err := json.Unmarshal(out, &pc); err != nil {
			t.Fatal(err)
		}
		if pc.Format != "PRECOMPUTED" || !pc.Obfuscated || pc.Environment.Name != "production" || pc.Salt == "" || salts[pc.Salt] {
			t.Fatalf("header fields: %+v", pc)
		}
		salts[pc.Salt] = true
		attrs := map[string]any{"age": float64(20 + i), "country": country, "version": version}
		want := 0
		snap.Flags(func(f *eval.Flag) bool {
			res := snap.Evaluate(f.Key, subject, attrs, "", now)
			got, ok := pc.Flags[ufc.SaltedFlagKey(pc.Salt, f.Key)]
			if !res.Matched() {
				if ok {
					t.Errorf("%s %s: precomputed but the engine says %s", subject, f.Key, res.Code)
				}
				return true
			}
			want++
			if !ok {
				t.Errorf("%s %s: missing, want %s", subject, f.Key, res.VariationKey())
				return true
			}
			if unb64(t, got.VariationKey) != res.VariationKey() || unb64(t, got.AllocationKey) != res.AllocationKey() ||
				unb64(t, got.VariationValue) != res.Variation.Text(f.Type) || got.VariationType != f.Type || got.DoLog != res.DoLog() {
				t.Errorf("%s %s: got %+v, want %s/%s", subject, f.Key, got, res.AllocationKey(), res.VariationKey())
			}
			return true
		})
		if len(pc.Flags) != want {
			t.Errorf("%s: %d flags, want %d", subject, len(pc.Flags), want)
		}
		matched += want
	}
	if matched == 0 {
		t.Fatal("no subject was assigned anything: the test proves nothing")
	}
}

// TestPrecomputedRefusesBadRequests: every limit answers a clear 4xx with
// the field at fault.
func TestPrecomputedRefusesBadRequests(t *testing.T) {
	url, key := precomputedServer(t, 3, httpapi.WithPrecomputedRate(0, 0))
	many := map[string]string{}
	for i := range httpapi.PrecomputedMaxAttributes + 1 {
		many["a"+strconv.Itoa(i)] = "x"
	}
	manyJSON, _ := json.Marshal(many)
	long := strings.Repeat("x", httpapi.PrecomputedMaxTextBytes+1)
	for _, c := range []struct {
		name, key, body string
		status          int
		code, field     string
	}{
		{"no key", "", `{"subject_key":"a"}`, 401, "", ""},
		{"wrong key", "nope", `{"subject_key":"a"}`, 401, "", ""},
		{"not JSON", key, `{`, 400, "invalid", ""},
		{"trailing data", key, `{"subject_key":"a"} {}`, 400, "invalid", ""},
		{"no subject", key, `{"subject_attributes":{}}`, 400, "invalid", "subject_key"},
		{"long subject", key, `{"subject_key":"` + strings.Repeat("s", httpapi.PrecomputedMaxKeyBytes+1) + `"}`, 400, "invalid", "subject_key"},
		{"too many attributes", key, `{"subject_key":"a","subject_attributes":{"categoricalAttributes":` + string(manyJSON) + `}}`, 400, "invalid", "subject_attributes"},
		{"long value", key, `{"subject_key":"a","subject_attributes":{"categoricalAttributes":{"c":"` + long + `"}}}`, 400, "invalid", "subject_attributes.categoricalAttributes"},
		{"list value", key, `{"subject_key":"a","subject_attributes":{"categoricalAttributes":{"c":[1]}}}`, 400, "invalid", "subject_attributes.categoricalAttributes"},
		{"text as number", key, `{"subject_key":"a","subject_attributes":{"numericAttributes":{"n":"7"}}}`, 400, "invalid", "subject_attributes.numericAttributes"},
		{"flat attributes", key, `{"subject_key":"a","subject_attributes":{"country":"NL"}}`, 400, "invalid", "subject_attributes"},
		{"both kinds", key, `{"subject_key":"a","subject_attributes":{"numericAttributes":{"n":7},"categoricalAttributes":{"n":"7"}}}`, 400, "invalid", "subject_attributes.categoricalAttributes"},
		{"too large", key, `{"subject_key":"a","pad":"` + strings.Repeat("p", httpapi.PrecomputedMaxBody) + `"}`, 413, httpx.CodeTooLarge, ""},
	} {
		code, _, out := postPrecomputed(t, url+"/assignments?apiKey="+c.key, c.body)
		if code != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, code, c.status, out)
			continue
		}
		if c.code == "" {
			continue
		}
		var eb httpx.ErrorBody
		if err := json.Unmarshal(out, &eb); err != nil || eb.Error.Code != c.code || eb.Error.Field != c.field || eb.Error.Message == "" {
			t.Errorf("%s: error %s, want code %s field %q", c.name, out, c.code, c.field)
		}
	}
	// Valid edge cases are accepted: null and boolean attributes, numbers
	// among categorical ones (Eppo's fixture sends them), no attributes.
	for _, body := range []string{`{"subject_key":"a"}`,
		`{"subject_key":"a","subject_attributes":{"numericAttributes":{"n":null},"categoricalAttributes":{"b":false,"build":42}},"bandit_actions":{}}`} {
		if code, _, out := postPrecomputed(t, url+"/api/assignments?apiKey="+key, body); code != 200 {
			t.Errorf("%s: %d %s", body, code, out)
		}
	}
}

// TestPrecomputedRateLimit: past the burst a key gets 429 with Retry-After;
// another key keeps its own bucket.
func TestPrecomputedRateLimit(t *testing.T) {
	url, key := precomputedServer(t, 1, httpapi.WithPrecomputedRate(0.5, 3))
	body := `{"subject_key":"a"}`
	for i := range 3 {
		if code, _, out := postPrecomputed(t, url+"/assignments?apiKey="+key, body); code != 200 {
			t.Fatalf("request %d: %d %s", i, code, out)
		}
	}
	code, hdr, out := postPrecomputed(t, url+"/assignments?apiKey="+key, body)
	var eb httpx.ErrorBody
	json.Unmarshal(out, &eb)
	if code != http.StatusTooManyRequests || eb.Error.Code != "rate_limited" {
		t.Fatalf("4th request: %d %s", code, out)
	}
	if s, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || s < 1 || s > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2 seconds", hdr.Get("Retry-After"))
	}
	// An unknown key is refused as such, not rate-limited.
	if code, _, _ := postPrecomputed(t, url+"/assignments?apiKey=other", body); code != 401 {
		t.Fatalf("unknown key: %d", code)
	}
}

// TestPrecomputedRateLimitConcurrent: under concurrent requests the bucket
// lets through exactly its burst (run with -race).
func TestPrecomputedRateLimitConcurrent(t *testing.T) {
	url, key := precomputedServer(t, 1, httpapi.WithPrecomputedRate(0.001, 20))
	var wg sync.WaitGroup
	codes := make(chan int, 40)
	for range 40 {
		wg.Go(func() {
			resp, err := http.Post(url+"/assignments?apiKey="+key, "application/json", strings.NewReader(`{"subject_key":"a"}`))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[200] != 20 || n[429] != 20 {
		t.Fatalf("statuses %v, want 20 × 200 and 20 × 429", n)
	}
}
