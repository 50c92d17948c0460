package publish_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// freezer is a TCP proxy on loopback that can freeze the connections it
// carries at a given moment, as a stuck network path or a hung database
// backend would: they stay open and pass no byte until thawed. Connections
// opened later pass.
type freezer struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	conns    []*frozenPair
	accepted atomic.Int32
	wg       sync.WaitGroup
}

type frozenPair struct {
	client, server net.Conn
	mu             sync.Mutex
	thaw           chan struct{} // nil while flowing; closed to thaw
}

func newFreezer(t *testing.T, upstream string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, upstream: upstream}
	f.wg.Add(1)
	go f.serve()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, p := range f.conns {
			p.client.Close()
			p.server.Close()
			p.mu.Lock()
			if p.thaw != nil {
				close(p.thaw)
				p.thaw = nil
			}
			p.mu.Unlock()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *freezer) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", f.upstream)
		if err != nil {
			c.Close()
			continue
		}
		f.accepted.Add(1)
		p := &frozenPair{client: c, server: s}
		f.mu.Lock()
		f.conns = append(f.conns, p)
		f.mu.Unlock()
		f.wg.Add(2)
		go func() { defer f.wg.Done(); p.pipe(s, c) }()
		go func() { defer f.wg.Done(); p.pipe(c, s) }()
	}
}

// pipe copies src to dst, holding each chunk while the pair is frozen.
func (p *frozenPair) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			thaw := p.thaw
			p.mu.Unlock()
			if thaw != nil {
				<-thaw
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				src.Close()
			}
			return
		}
	}
}

// freeze freezes every connection open now.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.conns {
		p.mu.Lock()
		if p.thaw == nil {
			p.thaw = make(chan struct{})
		}
		p.mu.Unlock()
	}
}

// Issue 10, item 2: with its database connection frozen, a replica's
// refresh gives up at its deadline, a write's republish does not wait for
// it, and the replica reports itself unready once its configuration is
// older than MaxAge.
func TestFrozenDatabaseConnection(t *testing.T) {
	if storetest.Dialects()[len(storetest.Dialects())-1] != "postgres" {
		t.Skip("needs PostgreSQL (ALLOT_TEST_POSTGRES is off)")
	}
	ctx := context.Background()
	dsn := storetest.DSN(t, "postgres")
	direct, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	if _, err := storetest.OpsOn(direct).CreateFlag(ctx, colorDef("f")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := storetest.OpsOn(direct).UpdateFlagSettings(ctx, everyoneTo("f", "red", 0)); err != nil {
		t.Fatal(err)
	}

	u, _ := url.Parse(dsn)
	proxy := newFreezer(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	db, err := store.Open(ctx, u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	var skew atomic.Int64 // how far the cache's clock runs ahead
	c := publish.NewCache(db, nil)
	c.QueryTimeout = 2 * time.Second
	c.MaxAge = 30 * time.Second
	c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := proxy.accepted.Load(); n != 1 {
		t.Fatalf("precondition: the cache's pool should hold one connection, the proxy saw %d", n)
	}

	proxy.freeze()
	// Another replica changes the flag, so the refresh has work to do.
	if _, _, err := storetest.OpsOn(direct).UpdateFlagSettings(ctx, everyoneTo("f", "blue", 1)); err != nil {
		t.Fatal(err)
	}
	refreshed := make(chan error, 1)
	start := time.Now()
	go func() { refreshed <- c.Refresh(ctx) }()
	time.Sleep(300 * time.Millisecond) // let it take the frozen connection

	// A write on this replica: its republish uses a new connection and
	// must not wait for the stuck refresh.
	if _, _, err := storetest.OpsOn(direct).UpdateFlagSettings(ctx, everyoneTo("f", "control", 2)); err != nil {
		t.Fatal(err)
	}
	w := time.Now()
	c.Changed(core.DefaultEnvironment, []string{"f"})
	if took := time.Since(w); took > time.Second {
		t.Fatalf("a write's republish waited %v for the stuck refresh", took)
	}
	if got := assigned(c.Environment(core.DefaultEnvironment), "f"); got["MATCH:control"] != 200 {
		t.Fatalf("the write is not published: %v", got)
	}

	select {
	case err := <-refreshed:
		if err == nil {
			t.Fatal("the refresh over a frozen connection succeeded")
		}
		if took := time.Since(start); took > 4*time.Second {
			t.Fatalf("the refresh gave up after %v, deadline 2s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh over a frozen connection never gave up")
	}
	// The failed refresh did not undo the newer write.
	if got := assigned(c.Environment(core.DefaultEnvironment), "f"); got["MATCH:control"] != 200 {
		t.Fatalf("the failed refresh regressed the flag: %v", got)
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("one failed refresh made the replica unready at once: %v", err)
	}
	skew.Store(int64(31 * time.Second))
	err = c.Ready()
	if err == nil || !strings.Contains(err.Error(), "old") || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("Ready with a 31s old configuration after a failed refresh: %v", err)
	}

	// The frozen connection was dropped at the deadline; the next refresh
	// opens a new one and the replica is ready again.
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Ready(); err != nil {
		t.Fatalf("ready after a good refresh: %v", err)
	}
}
