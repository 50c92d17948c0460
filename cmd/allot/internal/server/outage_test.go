package server_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// cutProxy forwards TCP to a target until cut, then refuses and drops every
// connection: a database that goes away.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, d)
		p.mu.Unlock()
		go func() { io.Copy(d, c); d.Close() }()
		go func() { io.Copy(c, d); c.Close() }()
	}
}

func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A database outage answers admin calls and UI pages 503 with Retry-After,
// never 500, and /readyz is not ready.
func TestDatabaseOutageIs503(t *testing.T) {
	if !slicesContain(storetest.Dialects(), "postgres") {
		t.Skip("ALLOT_TEST_POSTGRES=off")
	}
	dsn := storetest.DSN(t, "postgres")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	logs := &syncBuffer{}
	s := start(t, server.Config{DB: u.String(), AdminToken: adminToken, PollInterval: time.Hour, Log: textLog(logs)})
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	ctx := context.Background()
	tok, err := s.Core().Authenticate(ctx, adminToken)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := s.DB().CreateSession(ctx, tok.UserID, tok.TokenID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	page := func() (int, http.Header) {
		req, _ := http.NewRequest("GET", s.URL()+"/flags", nil)
		req.AddCookie(&http.Cookie{Name: "allot_session", Value: sess.Secret})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header
	}
	if status, _, body := do(t, nil, "GET", s.URL()+"/api/v1/flags", "Bearer "+adminToken, nil); status != 200 {
		t.Fatalf("before the outage: %d %s", status, body)
	}
	if status, _ := page(); status != 200 {
		t.Fatalf("UI before the outage: %d", status)
	}

	proxy.cut()
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/flags", ""},
		{"POST", "/api/v1/environments", `{"name":"staging"}`},
		{"GET", "/api/v1/audit", ""},
	} {
		status, hdr, body := do(t, nil, c.method, s.URL()+c.path, "Bearer "+adminToken, strings.NewReader(c.body))
		if status != 503 || hdr.Get("Retry-After") == "" {
			t.Errorf("%s %s during the outage: %d Retry-After %q %s", c.method, c.path, status, hdr.Get("Retry-After"), body)
			continue
		}
		if e := jsonError(t, c.path, body); e.Code != core.EUNAVAILABLE {
			t.Errorf("%s %s: code %q", c.method, c.path, e.Code)
		}
	}
	if status, hdr := page(); status != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("UI during the outage: %d Retry-After %q", status, hdr.Get("Retry-After"))
	}
	if status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil); status != 503 || !strings.Contains(body, "database: ") {
		t.Errorf("readyz during the outage: %d %q", status, body)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
