package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// countingListener counts the writes to its connections' sockets.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// A configuration of any size goes out in one write to the socket, and
// keep-alive requests on the same connection keep working.
func TestConfigIsOneWrite(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	key, err := storetest.OpsOn(db).CreateSDKKey(ctx, core.DefaultEnvironment, "web")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 { // about 60 KB of JSON, far beyond net/http's 4 KB buffer
		f := colorFlag()
		f.Key = fmt.Sprintf("flag-%03d", i)
		if _, err := storetest.OpsOn(db).CreateFlag(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	cache := publish.NewCache(db, nil)
	if err := cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	p := cache.ForKey(key.Secret)
	if len(p.Body) < 32<<10 {
		t.Fatalf("document of %d bytes is too small for this test", len(p.Body))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingListener{Listener: ln}
	srv := &http.Server{Handler: mount(httpapi.New(db, cache, nil)), ConnContext: httpapi.ConnContext}
	go srv.Serve(httpapi.Listener(counted))
	defer srv.Close()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i, enc := range []string{"identity", "gzip", "identity"} {
		before := counted.writes.Load()
		fmt.Fprintf(conn, "GET /api/flag-config/v1/config?apiKey=%s HTTP/1.1\r\nHost: x\r\nAccept-Encoding: %s\r\n\r\n", key.Secret, enc)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %v", i, resp.StatusCode, err)
		}
		want := p.Body
		if enc == "gzip" {
			want = p.Gzip
		}
		if !bytes.Equal(body, want) || !strings.HasPrefix(resp.Header.Get("Etag"), `"`) {
			t.Fatalf("request %d: %d bytes, want %d", i, len(body), len(want))
		}
		if n := counted.writes.Load() - before; n != 1 {
			t.Fatalf("request %d (%s, %d bytes) took %d writes", i, enc, len(body), n)
		}
	}
}
