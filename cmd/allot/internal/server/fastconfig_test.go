package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// exchange sends raw request bytes on a new connection (in pieces of at
// most chunk bytes, 0: at once), half-closes it and returns every byte the
// server sent until it closed, with Date headers blanked.
func exchange(t *testing.T, addr, req string, chunk int) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	for rest := req; rest != ""; {
		n := len(rest)
		if chunk > 0 {
			n = min(n, chunk)
		}
		if _, err := io.WriteString(c, rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
		if chunk > 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", req, err)
	}
	return dateRE.ReplaceAllString(string(out), "Date: (date)\r\n")
}

var dateRE = regexp.MustCompile(`Date: [^\r]*\r\n`)

// TestFastConfigAnswersAsNetHTTP: for every kind of request, the fast path
// of the config endpoint (server a) sends exactly the bytes net/http sends
// (server b, NoFastConfig, same database), answers the plain requests
// itself and hands every other to net/http, and the request metrics come
// out the same.
func TestFastConfigAnswersAsNetHTTP(t *testing.T) {
	dsn := storetest.DSN(t, "sqlite")
	a := start(t, server.Config{DB: dsn, AdminToken: adminToken})
	ctx := context.Background()
	api := apiclient.New(a.URL(), adminToken)
	variations := []core.Variation{{Key: "control", Value: json.RawMessage(`"blue"`)}, {Key: "treatment", Value: json.RawMessage(`"green"`)}}
	for i := range 40 { // a body beyond 4 KB
		if _, err := api.CreateFlag(ctx, core.Flag{Key: fmt.Sprintf("flag-%02d", i), VariationType: ufc.TypeString, Variations: variations}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := api.CreateSDKKey(ctx, "production", "backend")
	if err != nil {
		t.Fatal(err)
	}
	ckey, err := api.CreateClientKey(ctx, "production", "app", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, server.Config{DB: dsn, AdminToken: adminToken, NoFastConfig: true})

	// The ETag, from both servers so that they count the same requests.
	var resp *http.Response
	for _, s := range []*server.Server{a, b} {
		req, _ := http.NewRequest("GET", s.URL()+"/api/flag-config/v1/config?apiKey="+key.Secret, nil)
		req.Header.Set("Accept-Encoding", "identity")
		if resp, err = http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	etag := resp.Header.Get("Etag")
	gzTag := strings.TrimSuffix(etag, `"`) + `-gz"`
	if etag == "" || resp.ContentLength < 4096 {
		t.Fatalf("etag %q, %d bytes", etag, resp.ContentLength)
	}

	cfg := "/api/flag-config/v1/config?apiKey=" + key.Secret + "&sdkName=node-server-sdk&sdkVersion=3.10.2"
	get := func(target string, headers ...string) string {
		return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" + strings.Join(headers, "") + "\r\n"
	}
	for _, c := range []struct {
		name  string
		req   string
		fast  uint64 // requests the fast path must answer
		chunk int
	}{
		{"gzip", get(cfg, "Accept-Encoding: gzip\r\n"), 1, 0},
		{"identity", get(cfg), 1, 0},
		{"gzip refused", get(cfg, "Accept-Encoding: gzip;q=0, identity\r\n"), 1, 0},
		{"two Accept-Encoding", get(cfg, "Accept-Encoding: br\r\n", "accept-encoding: gzip\r\n"), 1, 0},
		{"304 gzip", get(cfg, "Accept-Encoding: gzip\r\n", "If-None-Match: "+gzTag+"\r\n"), 1, 0},
		{"304 weak in a list", get(cfg, "If-None-Match: \"nope\", W/"+etag+"\r\n"), 1, 0},
		{"304 star", get(cfg, "If-None-Match: *\r\n"), 1, 0},
		{"no match", get(cfg, "Accept-Encoding: gzip\r\n", "If-None-Match: \"other\"\r\n"), 1, 0},
		{"HEAD gzip", "HEAD " + cfg + " HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n", 1, 0},
		{"HEAD", "HEAD " + cfg + " HTTP/1.1\r\nHost: x\r\n\r\n", 1, 0},
		{"client SDK", get("/api/flag-config/v1/config?apiKey="+key.Secret+"&sdkName=js-client-sdk", "Accept-Encoding: gzip\r\n"), 1, 0},
		{"client key", get("/api/flag-config/v1/config?apiKey="+ckey.Secret, "Accept-Encoding: gzip\r\n"), 1, 0},
		{"escaped key", get("/api/flag-config/v1/config?apiKey=" + strings.Replace(key.Secret, "_", "%5F", 1)), 1, 0},
		{"keep-alive", get(cfg, "Connection: keep-alive\r\n"), 1, 0},
		{"pipelined", get(cfg) + get(cfg, "Accept-Encoding: gzip\r\n") + get(cfg, "If-None-Match: "+etag+"\r\n"), 3, 0},
		{"trickled", get(cfg, "Accept-Encoding: gzip\r\n", "X-Something: else\r\n"), 1, 7},
		{"pipelined, then another route", get(cfg) + get("/healthz") + get(cfg), 1, 0},
		// Left to net/http:
		{"another route", get("/healthz"), 0, 0},
		{"bandits", get("/api/flag-config/v1/bandits?apiKey=" + key.Secret), 0, 0},
		{"a longer path", get("/api/flag-config/v1/configs?apiKey=" + key.Secret), 0, 0},
		{"unknown key", get("/api/flag-config/v1/config?apiKey=allot_sdk_nope"), 0, 0},
		{"no key", get("/api/flag-config/v1/config"), 0, 0},
		{"POST", "POST " + cfg + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 0, 0},
		{"GET with a body", get(cfg, "Content-Length: 5\r\n") + "hello", 0, 0},
		{"chunked", get(cfg, "Transfer-Encoding: chunked\r\n") + "0\r\n\r\n", 0, 0},
		{"origin", get("/api/flag-config/v1/config?apiKey="+ckey.Secret, "Origin: https://shop.example.com\r\n"), 0, 0},
		{"origin, server key", get(cfg, "Origin: https://shop.example.com\r\n"), 0, 0},
		{"HTTP/1.0", "GET " + cfg + " HTTP/1.0\r\n\r\n", 0, 0},
		{"no Host", "GET " + cfg + " HTTP/1.1\r\n\r\n", 0, 0},
		{"two Hosts", get(cfg, "Host: other\r\n"), 0, 0},
		{"bad Host", get(cfg, "Host: a b\r\n"), 0, 0},
		{"Connection: close", get(cfg, "Connection: close\r\n"), 0, 0},
		{"Expect", get(cfg, "Expect: 100-continue\r\n"), 0, 0},
		{"obs-fold", get(cfg, "X-A: b\r\n c\r\n"), 0, 0},
		{"bad header name", get(cfg, "X A: b\r\n"), 0, 0},
		{"control byte", get(cfg, "X-A: b\x01c\r\n"), 0, 0},
		{"bare LF", "GET " + cfg + " HTTP/1.1\nHost: x\n\n", 0, 0},
		{"a long head", get(cfg, "X-Pad: "+strings.Repeat("p", 5000)+"\r\n"), 0, 0},
		{"absolute form", get("http://127.0.0.1" + cfg), 0, 0},
		{"space in target", "GET /api/flag-config/v1/config?apiKey=" + key.Secret + " x HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0},
		{"garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := a.FastStats()
			got := exchange(t, a.Addr(), c.req, c.chunk)
			want := exchange(t, b.Addr(), c.req, c.chunk)
			if got != want {
				t.Errorf("the fast path answered\n%.600q\nnet/http\n%.600q", got, want)
			}
			if !strings.HasPrefix(got, "HTTP/1.") && c.name != "garbage" {
				t.Errorf("no answer: %q", got)
			}
			after := a.FastStats()
			if n := after.Served - before.Served; n != c.fast {
				t.Errorf("the fast path answered %d requests, want %d", n, c.fast)
			}
			if b.FastStats() != (httpapi.FastStats{}) {
				t.Errorf("server b has a fast path: %+v", b.FastStats())
			}
		})
	}

	// Both servers counted the same requests of the config route.
	metric := func(s *server.Server) string {
		req, _ := http.NewRequest("GET", s.URL()+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "allot_http_requests_total") && strings.Contains(l, "flag-config/v1/config\"") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	}
	ma, mb := metric(a), metric(b)
	if ma == "" || ma != mb {
		t.Errorf("config requests counted\n%s\nby the fast path's server, and\n%s\nby net/http's", ma, mb)
	}
}

// TestFastConfigShutdown: closing the server ends the fast path's idle
// keep-alive connections at once.
func TestFastConfigShutdown(t *testing.T) {
	s, key, _, _ := clientSetup(t, "sqlite")
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /api/flag-config/v1/config?apiKey=%s HTTP/1.1\r\nHost: x\r\n\r\n", key.Secret)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 || s.FastStats().Served != 1 {
		t.Fatalf("status %d, fast path %+v", resp.StatusCode, s.FastStats())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Close took %v", took)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := br.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the idle connection after Close: %d bytes, %v; want EOF", n, err)
	}
}
