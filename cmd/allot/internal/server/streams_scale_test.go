package server_test

import (
	"bufio"
	"context"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// TestManyIdleStreams holds many idle streams open on one server (200, or
// ALLOT_STREAM_CLIENTS), reports the memory and goroutines each costs, and
// checks that a change reaches every one of them within 2 s. The clients
// are raw loopback connections with no goroutine of their own while idle,
// so the figure is the server's cost plus a socket each.
//
//	ALLOT_STREAM_CLIENTS=5000 go test -run TestManyIdleStreams -v ./internal/server
func TestManyIdleStreams(t *testing.T) {
	n := 200
	if v := os.Getenv("ALLOT_STREAM_CLIENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	api := apiclient.New(s.URL(), adminToken)
	f := newSwitchFlag(t, api, "kill-switch")
	key, err := api.CreateSDKKey(context.Background(), "production", "svc")
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(s.URL(), "http://")
	request := "GET /api/flag-config/v1/stream HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + key.Secret + "\r\n\r\n"

	measure := func() (heap, stack uint64, goroutines int) {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse, m.StackInuse, runtime.NumGoroutine()
	}
	heap0, stack0, g0 := measure()
	conns := make([]net.Conn, 0, n)
	readers := make([]*bufio.Reader, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte(request)); err != nil {
			t.Fatal(err)
		}
	}
	// Each stream's headers and first event (the current configuration).
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		r := bufio.NewReaderSize(c, 1<<10)
		readers = append(readers, r)
		if err := readUntil(r, "id: "); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
	}
	heap1, stack1, g1 := measure()
	per := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(n) / 1024 }
	t.Logf("%d idle streams: heap %.1f KiB/stream, stacks %.1f KiB/stream, %.2f goroutines/stream (heap %d MiB, stacks %d MiB in all)",
		n, per(heap0, heap1), per(stack0, stack1), float64(g1-g0)/float64(n), (heap1-heap0)>>20, (stack1-stack0)>>20)

	// One change reaches all of them.
	start := time.Now()
	f.set(t, "b")
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, r := range readers {
		wg.Go(func() {
			if err := readUntil(r, `"variationKey":"b"`); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("a change reached all %d streams in %v", n, took)
	if took > 2*time.Second {
		t.Errorf("a change took %v to reach %d streams, want under 2s", took, n)
	}
}

// readUntil reads lines until one contains s.
func readUntil(r *bufio.Reader, s string) error {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.Contains(line, s) {
			return nil
		}
	}
}
