package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// firstRead signals once its body is first read: the handler reads the
// body only once it holds a slot.
type firstRead struct {
	io.ReadCloser
	once    sync.Once
	reading chan<- struct{}
}

func (b *firstRead) Read(p []byte) (int, error) {
	b.once.Do(func() { b.reading <- struct{}{} })
	return b.ReadCloser.Read(p)
}

// TestIngestWaitsForASlot: with every slot taken by requests still being
// read, a request does not get 503 at once but waits (up to SlotWait) for
// a slot, and succeeds when one frees within that time. Two Go SDK
// processes, 16 requests each, fill every slot; a 503 would stall their
// loggers for a backoff.
func TestIngestWaitsForASlot(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	w := ingest.NewWriter(db, ingest.Options{})
	t.Cleanup(func() { w.Close(context.Background()) })
	h := &ingest.Handler{
		Environment: func(k string) (string, bool) { return "production", k == key },
		Writer:      w,
		Log:         slog.New(slog.DiscardHandler),
		Now:         time.Now,
	}
	reading := make(chan struct{}, ingest.MaxInFlight)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			r.Body = &firstRead{ReadCloser: r.Body, reading: reading}
		}
		h.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)

	// MaxInFlight requests whose bodies are not sent yet hold every slot.
	pipes := make([]*io.PipeWriter, ingest.MaxInFlight)
	codes := make(chan int, ingest.MaxInFlight+1)
	for i := range pipes {
		pr, pw := io.Pipe()
		pipes[i] = pw
		req, _ := http.NewRequest("POST", srv.URL, pr)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("X-Hold", "1")
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				codes <- 0
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	finish := func(i int) {
		body, _ := json.Marshal([]any{event(fmt.Sprintf("held-%d", i), "s")})
		pipes[i].Write(body)
		pipes[i].Close()
	}
	defer func() {
		for i := range pipes {
			pipes[i].Close()
		}
	}()
	for range ingest.MaxInFlight {
		select {
		case <-reading:
		case <-time.After(10 * time.Second):
			t.Fatal("the held requests never reached the handler")
		}
	}

	// One more: a slot frees a moment after it arrives.
	late := make(chan int, 1)
	go func() {
		body, _ := json.Marshal([]any{event("late", "s")})
		code, _, _ := post(t, srv.URL, body, bearer())
		late <- code
	}()
	time.Sleep(ingest.SlotWait / 5)
	finish(0)
	if code := <-late; code != http.StatusOK {
		t.Fatalf("a request that a slot freed for within SlotWait got %d", code)
	}
	for i := 1; i < len(pipes); i++ {
		finish(i)
	}
	for range pipes {
		if code := <-codes; code != http.StatusOK {
			t.Fatalf("a held request got %d", code)
		}
	}
}
