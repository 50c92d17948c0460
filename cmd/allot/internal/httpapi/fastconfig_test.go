package httpapi_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// TestFastConfigTimeouts: the fast path closes a keep-alive connection
// left idle, and one whose request head does not arrive in time, as
// net/http would; and a head split across reads is answered.
func TestFastConfigTimeouts(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	key, err := storetest.OpsOn(db).CreateSDKKey(ctx, core.DefaultEnvironment, "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storetest.OpsOn(db).CreateFlag(ctx, colorFlag()); err != nil {
		t.Fatal(err)
	}
	cache := publish.NewCache(db, nil)
	if err := cache.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(db, cache, nil)
	const timeout = 300 * time.Millisecond
	fl := httpapi.NewFastListener(ln, api, httpapi.FastOptions{IdleTimeout: timeout, HeaderTimeout: timeout, WriteTimeout: time.Minute})
	srv := &http.Server{Handler: mount(api), ConnContext: httpapi.ConnContext}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(fl) }()
	defer func() {
		srv.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		fl.Wait(wctx)
	}()

	req := fmt.Sprintf("GET /api/flag-config/v1/config?apiKey=%s HTTP/1.1\r\nHost: x\r\n\r\n", key.Secret)
	// closedWithin reads from c until the server closes it, which must be
	// between the timeout and 2 s (the fast path moves deadlines in steps
	// of a second).
	closedWithin := func(c net.Conn, br *bufio.Reader, from time.Time) {
		t.Helper()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.Copy(io.Discard, br)
		took := time.Since(from)
		if err != nil || n != 0 {
			t.Errorf("after the timeout: %d bytes, %v; want a close", n, err)
		}
		if took < timeout || took > 2*time.Second {
			t.Errorf("closed after %v, want between %v and 2s", took, timeout)
		}
	}

	t.Run("idle", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		// A head in three pieces is answered.
		for _, part := range []string{req[:10], req[10:40], req[40:]} {
			io.WriteString(c, part)
			time.Sleep(20 * time.Millisecond)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		closedWithin(c, br, time.Now())
	})
	t.Run("slow head", func(t *testing.T) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, req[:30])
		closedWithin(c, bufio.NewReader(c), time.Now())
	})
	if st := fl.Stats(); st.Served != 1 || st.HandedOff != 0 {
		t.Errorf("stats %+v, want one request served and no connection handed off", st)
	}
}
