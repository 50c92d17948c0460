package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// firstStreamEvent opens the configuration stream with key (and origin, if
// set) and returns the response and the id and data of its first event.
func firstStreamEvent(t *testing.T, url, origin, lastEventID string) (*http.Response, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		return resp, "", ""
	}
	var id, data string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = line[len("id: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "" && data != "":
			return resp, id, data
		}
	}
	t.Fatalf("stream ended without an event: %v", sc.Err())
	return nil, "", ""
}

// TestClientKeyStream: a client key opens the configuration stream and
// gets the CLIENT document's ETag and the CLIENT document inline, never the
// SERVER one; its Last-Event-ID is the CLIENT ETag; its origins are
// checked as on the configuration.
func TestClientKeyStream(t *testing.T) {
	s, serverKey, clientKey, _ := clientSetup(t, "sqlite")
	cfg := s.URL() + "/api/flag-config/v1/config?apiKey="
	_, hdr, clientBody := do(t, nil, "GET", cfg+clientKey.Secret, "", nil, "Accept-Encoding", "identity")
	clientTag := hdr.Get("ETag")
	_, hdr, serverBody := do(t, nil, "GET", cfg+serverKey.Secret, "", nil, "Accept-Encoding", "identity")
	serverTag := hdr.Get("ETag")
	if clientTag == "" || clientTag == serverTag {
		t.Fatalf("ETags: client %q, server %q", clientTag, serverTag)
	}
	stream := s.URL() + "/api/flag-config/v1/stream?apiKey="
	type event struct {
		ETag   string          `json:"etag"`
		Config json.RawMessage `json:"config"`
	}
	check := func(key, wantTag, wantBody string) {
		t.Helper()
		resp, id, data := firstStreamEvent(t, stream+key, pageOrigin, "")
		if resp.StatusCode != 200 {
			t.Fatalf("stream: %d", resp.StatusCode)
		}
		var ev event
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatal(err)
		}
		if id != wantTag || ev.ETag != wantTag || string(ev.Config) != wantBody {
			t.Fatalf("event id %q etag %q config %.80s; want %q and %.80s", id, ev.ETag, ev.Config, wantTag, wantBody)
		}
	}
	// Both kinds of key, in both orders, so that the per-environment event
	// cache cannot hand one kind's event to the other.
	check(clientKey.Secret, clientTag, clientBody)
	check(serverKey.Secret, serverTag, serverBody)
	check(clientKey.Secret, clientTag, clientBody)
	if !strings.Contains(clientBody, `"format":"CLIENT"`) {
		t.Fatalf("client body: %.100s", clientBody)
	}

	// CORS: the page's origin is echoed; another origin is refused.
	resp, _, _ := firstStreamEvent(t, stream+clientKey.Secret, pageOrigin, "")
	if resp.Header.Get("Access-Control-Allow-Origin") != pageOrigin {
		t.Fatalf("stream CORS: %v", resp.Header)
	}
	if resp, _, _ := firstStreamEvent(t, stream+clientKey.Secret, otherOrigin, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("stream from a disallowed origin: %d", resp.StatusCode)
	}

	// A client that has the CLIENT document gets no event until a change;
	// the SERVER ETag does not count as having it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", stream+clientKey.Secret, nil)
	req.Header.Set("Last-Event-ID", clientTag)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	got := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r2.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "id: ") {
				got <- sc.Text()
				return
			}
		}
		close(got)
	}()
	select {
	case id := <-got:
		t.Fatalf("an event for a client that has the document: %s", id)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if _, id, _ := firstStreamEvent(t, stream+clientKey.Secret, "", serverTag); id != clientTag {
		t.Fatalf("Last-Event-ID of the SERVER form: event %q, want %q", id, clientTag)
	}
}

// TestOFREPClientKeyCORS: a client key evaluates through OFREP from the
// origins it allows (CORS echoes the origin and exposes the ETag), is
// refused from others; a server key still evaluates, without CORS.
func TestOFREPClientKeyCORS(t *testing.T) {
	s, serverKey, clientKey, _ := clientSetup(t, "sqlite")
	bulk := s.URL() + "/ofrep/v1/evaluate/flags"
	body := `{"context":{"targetingKey":"user-1","country":"NL","age":30}}`

	code, h, _ := do(t, nil, "OPTIONS", bulk, "", nil, "Origin", pageOrigin, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type, if-none-match")
	if code != 204 || h.Get("Access-Control-Allow-Origin") != pageOrigin || h.Get("Access-Control-Allow-Methods") != "POST" {
		t.Fatalf("OFREP preflight: %d %v", code, h)
	}
	code, h, out := do(t, nil, "POST", bulk, "Bearer "+clientKey.Secret, strings.NewReader(body), "Origin", pageOrigin, "Content-Type", "application/json")
	if code != 200 || h.Get("Access-Control-Allow-Origin") != pageOrigin || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "ETag") ||
		h.Get("ETag") == "" || !strings.Contains(out, `"checkout-button"`) || !strings.Contains(out, `"green"`) {
		t.Fatalf("OFREP bulk with a client key: %d %v %s", code, h, out)
	}
	// X-API-Key, OFREP's other scheme, is checked the same way.
	code, _, out = do(t, nil, "POST", bulk+"/checkout-button", "", strings.NewReader(body), "X-API-Key", clientKey.Secret, "Origin", otherOrigin, "Content-Type", "application/json")
	if code != http.StatusForbidden {
		t.Fatalf("OFREP from a disallowed origin: %d %s", code, out)
	}
	code, _, out = do(t, nil, "POST", bulk+"/checkout-button", "", strings.NewReader(body), "X-API-Key", clientKey.Secret, "Content-Type", "application/json")
	if code != 200 || !strings.Contains(out, `"treatment"`) {
		t.Fatalf("OFREP single flag with a client key: %d %s", code, out)
	}
	code, h, _ = do(t, nil, "POST", bulk, "Bearer "+serverKey.Secret, strings.NewReader(body), "Origin", pageOrigin, "Content-Type", "application/json")
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("OFREP with a server key: %d %v", code, h)
	}
}
