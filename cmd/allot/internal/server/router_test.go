package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// do sends one request and returns the status, headers and body.
func do(t *testing.T, c *http.Client, method, url, auth string, body io.Reader, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = noRedirect
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// jsonError decodes an error body, failing the test unless it is the
// server's JSON error.
func jsonError(t *testing.T, what, body string) httpx.ErrorDetail {
	t.Helper()
	var eb httpx.ErrorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code == "" {
		t.Fatalf("%s: not a JSON error: %q (%v)", what, body, err)
	}
	return eb.Error
}

// Everything under /api/ answers JSON errors (ingestion included), the UI
// has the rest, and health answers without credentials.
func TestRootRouter(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	for _, c := range []struct {
		method, path, auth string
		status             int
		code               string
	}{
		{"GET", "/api/v1/nothing-here", "Bearer " + adminToken, 404, "not_found"},
		{"GET", "/api/v2/flags", "", 404, "not_found"},
		{"GET", "/api/v1/flags", "", 401, "unauthorized"},
		{"POST", "/api/v1/assignments", "", 401, "unauthorized"},
		{"POST", "/api/v1/assignments", "Bearer wrong", 401, "unauthorized"},
	} {
		status, hdr, body := do(t, nil, c.method, s.URL()+c.path, c.auth, strings.NewReader("[]"))
		if status != c.status || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %s %q", c.method, c.path, status, hdr.Get("Content-Type"), body)
			continue
		}
		if e := jsonError(t, c.path, body); e.Code != c.code {
			t.Errorf("%s %s: code %q, want %q", c.method, c.path, e.Code, c.code)
		}
	}
	if status, hdr, _ := do(t, nil, "GET", s.URL()+"/flags", "", nil); status != 303 || !strings.HasPrefix(hdr.Get("Location"), "/signin") {
		t.Errorf("UI: %d %v", status, hdr)
	}
	if status, _, body := do(t, nil, "GET", s.URL()+"/healthz", "", nil); status != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", status, body)
	}
	status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil)
	if status != 200 || body != "ready\ndatabase: ok\ndisk: ok\nconfiguration: ok\n" {
		t.Errorf("readyz: %d %q", status, body)
	}
}

// The management API accepts the bearer scheme in any case (RFC 9110), as
// ingestion always did.
func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	for _, scheme := range []string{"Bearer", "bearer", "BEARER", "bEaReR"} {
		if status, _, body := do(t, nil, "GET", s.URL()+"/api/v1/flags", scheme+" "+adminToken, nil); status != 200 {
			t.Errorf("%s: %d %s", scheme, status, body)
		}
	}
	if status, _, _ := do(t, nil, "GET", s.URL()+"/api/v1/flags", "Basic "+adminToken, nil); status != 401 {
		t.Errorf("Basic: %d", status)
	}
}

// A management body is one JSON value, at most 4 MiB: data after it is a
// 400, a larger body a 413 that names the limit; neither changes anything.
func TestManagementBodyLimits(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	url, auth := s.URL()+"/api/v1/environments", "Bearer "+adminToken
	status, _, body := do(t, nil, "POST", url, auth, strings.NewReader(`{"name":"x"} garbage`))
	if status != 400 {
		t.Fatalf("trailing data: %d %s", status, body)
	}
	if e := jsonError(t, "trailing", body); e.Code != "invalid" || e.Field != "body" {
		t.Errorf("trailing data: %+v", e)
	}
	// White space after the value is fine.
	if status, _, body := do(t, nil, "POST", url, auth, strings.NewReader("{\"name\":\"y\"}\n \n")); status != 201 {
		t.Fatalf("trailing white space: %d %s", status, body)
	}
	big := `{"name":"z","description":"` + strings.Repeat("a", 4<<20) + `"}`
	status, _, body = do(t, nil, "POST", url, auth, strings.NewReader(big))
	if status != 413 {
		t.Fatalf("large body: %d %.200s", status, body)
	}
	if e := jsonError(t, "large", body); e.Code != "too_large" || !strings.Contains(e.Message, "4 MiB") {
		t.Errorf("large body: %+v", e)
	}
	_, _, body = do(t, nil, "GET", url, auth, nil)
	if strings.Contains(body, `"x"`) || strings.Contains(body, `"z"`) || !strings.Contains(body, `"y"`) {
		t.Errorf("environments after refusals: %s", body)
	}
}

// /metrics needs an admin token or the metrics token by default; public
// and off are explicit choices.
func TestMetricsAccess(t *testing.T) {
	const metricsToken = "metrics-token-0123456789"
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken, MetricsToken: metricsToken})
	url := s.URL() + "/metrics"
	for auth, want := range map[string]int{
		"":                           401,
		"Bearer nope":                401,
		"Bearer " + adminToken:       200,
		"bearer " + metricsToken:     200,
		"Bearer " + metricsToken[1:]: 401,
	} {
		status, _, body := do(t, nil, "GET", url, auth, nil)
		if status != want {
			t.Errorf("%q: %d, want %d", auth, status, want)
		}
		if status == 200 && !strings.Contains(body, "allot_config_builds_total") {
			t.Errorf("%q: no metrics in %.200s", auth, body)
		}
	}
	pub := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), Metrics: server.MetricsPublic})
	if status, _, _ := do(t, nil, "GET", pub.URL()+"/metrics", "", nil); status != 200 {
		t.Errorf("public: %d", status)
	}
	off := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), Metrics: server.MetricsOff, AdminToken: adminToken})
	if status, _, _ := do(t, nil, "GET", off.URL()+"/metrics", "Bearer "+adminToken, nil); status != 404 {
		t.Errorf("off: %d", status)
	}
	if _, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: storetest.DSN(t, "sqlite"), Metrics: "yes"}); err == nil {
		t.Error("Metrics: yes was accepted")
	}
}

// A SQLite server with less free disk than its minimum is not ready, and
// says why.
func TestNotReadyOnLowDisk(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), MinFreeDisk: 1 << 62})
	status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil)
	if status != 503 || !strings.HasPrefix(body, "not ready\n") || !strings.Contains(body, "disk: ") || !strings.Contains(body, "below the minimum") ||
		!strings.Contains(body, "database: ok") {
		t.Fatalf("%d %q", status, body)
	}
}

// The session cookie is Secure exactly when the client used HTTPS: TLS on
// the server's own listener, or X-Forwarded-Proto: https from a trusted
// proxy (and from nobody else).
func TestSecureCookies(t *testing.T) {
	secureCookie := func(t *testing.T, c *http.Client, url string, hdr ...string) bool {
		t.Helper()
		status, h, body := do(t, c, "GET", url+"/signin", "", nil, hdr...)
		if status != 200 {
			t.Fatalf("signin: %d %.200s", status, body)
		}
		ck := h.Get("Set-Cookie")
		if !strings.HasPrefix(ck, "allot_signin=") {
			t.Fatalf("no sign-in cookie: %v", h)
		}
		return strings.Contains(ck, "; Secure")
	}
	plain := start(t, server.Config{DB: storetest.DSN(t, "sqlite")})
	if secureCookie(t, nil, plain.URL(), "X-Forwarded-Proto", "https") {
		t.Error("X-Forwarded-Proto from an untrusted client made the cookie Secure")
	}
	other := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if secureCookie(t, nil, other.URL(), "X-Forwarded-Proto", "https") {
		t.Error("X-Forwarded-Proto from an address outside the trusted proxies made the cookie Secure")
	}
	proxied := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if !secureCookie(t, nil, proxied.URL(), "X-Forwarded-Proto", "https") {
		t.Error("X-Forwarded-Proto: https from a trusted proxy: cookie not Secure")
	}
	if secureCookie(t, nil, proxied.URL(), "X-Forwarded-Proto", "http") {
		t.Error("X-Forwarded-Proto: http from a trusted proxy: cookie Secure")
	}

	cert, key, pool := selfSigned(t)
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), TLSCert: cert, TLSKey: key})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	url := strings.Replace(s.URL(), "http://", "https://", 1)
	if !secureCookie(t, c, url) {
		t.Error("HTTPS: cookie not Secure")
	}
	// The TLS listener speaks nothing else.
	if resp, err := http.Get(s.URL() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered on the TLS port")
		}
	}
	if _, err := server.Start(context.Background(), server.Config{Addr: "127.0.0.1:0", DB: storetest.DSN(t, "sqlite"), TLSCert: cert}); err == nil {
		t.Error("a certificate without a key was accepted")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "allot test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certPath, keyPath, pool
}

// A busy port fails the start before the database is created or a token
// printed: listen first.
func TestBusyPortCreatesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	path := filepath.Join(t.TempDir(), "allot.db")
	var out bytes.Buffer
	_, err = server.Start(context.Background(), server.Config{Addr: ln.Addr().String(), DB: path, Announce: &out})
	if err == nil {
		t.Fatal("started on a busy port")
	}
	if out.Len() != 0 {
		t.Errorf("printed before failing: %q", out.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the database was created: %v", err)
	}
}

// syncBuffer is a log sink the server writes to from its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func textLog(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// A write lock held elsewhere (a long batch of events) is contention, not
// a disk that refuses writes: the replica stays ready.
func TestReadyWhileTheWriteLockIsHeld(t *testing.T) {
	path := storetest.DSN(t, "sqlite")
	s := start(t, server.Config{DB: path})
	other, err := sql.Open("sqlite", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin() // _txlock=immediate: takes the write lock now
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('held', 'x')`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil)
	if status != 200 || time.Since(start) > 2*time.Second {
		t.Errorf("readyz while the write lock is held: %d %q after %v", status, body, time.Since(start))
	}
}
