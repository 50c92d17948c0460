package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
)

// The configuration stream: GET /api/flag-config/v1/stream, server-sent
// events. Each event announces a configuration published for the key's
// environment:
//
//	id: "<ETag>"
//	data: {"type":"refetchEvaluation","etag":"<ETag>","config":{...}}
//
// "config", the whole UFC document, is present when the document is at
// most StreamInlineMax bytes; without it the client fetches
// /flag-config/v1/config. The id is the ETag, so a reconnecting client
// sends it back as Last-Event-ID and gets an event at once only if the
// configuration changed meanwhile. Comment lines every StreamHeartbeat keep
// proxies from closing an idle stream.

const (
	// StreamInlineMax is the largest document carried inside an event.
	StreamInlineMax = 64 << 10
	// StreamHeartbeat is the time between two heartbeat comments.
	StreamHeartbeat = 15 * time.Second
	// streamWriteTimeout bounds one write to a stream: a client that stops
	// reading is dropped rather than holding its goroutine forever.
	streamWriteTimeout = 10 * time.Second
	// StreamLimit is how many streams a server holds open at once by default
	// (WithStreamLimit); beyond it a stream request is answered 503 with
	// Retry-After, and the client polls meanwhile. An idle stream costs
	// about 27 KiB and two goroutines (BENCHMARKS.md).
	StreamLimit = 20_000
	// streamRetryMillis is the reconnection delay the stream suggests to
	// EventSource clients.
	streamRetryMillis = 2000
)

var hdrEventStream = []string{"text/event-stream; charset=utf-8"}

// streams tracks what every stream of a Server shares: the end of all
// streams at shutdown and the encoded event of each environment's current
// configuration (encoded once, not once per stream).
type streams struct {
	once sync.Once
	done chan struct{}
	open atomic.Int64 // streams being served

	mu     sync.Mutex
	events map[string]streamEvent // by environment
}

type streamEvent struct {
	etag string
	data []byte
}

func (st *streams) init() {
	st.once.Do(func() {
		st.done = make(chan struct{})
		st.events = map[string]streamEvent{}
	})
}

// WithStreamLimit sets how many configuration streams may be open at once
// (default StreamLimit).
func WithStreamLimit(n int) Option { return func(s *Server) { s.streamLimit = n } }

// OpenStreams returns the number of configuration streams being served.
func (s *Server) OpenStreams() int { return int(s.streams.open.Load()) }

// CloseStreams ends every open configuration stream, now and from now on;
// the server calls it when it shuts down (http.Server.RegisterOnShutdown),
// since Shutdown waits for streams, which never go idle on their own.
func (s *Server) CloseStreams() {
	s.streams.init()
	s.streams.mu.Lock()
	defer s.streams.mu.Unlock()
	select {
	case <-s.streams.done:
	default:
		close(s.streams.done)
	}
}

// event returns the encoded event announcing rep, a form of p's document;
// client says which form, since the SERVER and CLIENT events of one
// environment are cached apart.
func (st *streams) event(p *publish.Published, rep publish.Representation, client bool) []byte {
	st.mu.Lock()
	defer st.mu.Unlock()
	slot := p.Environment
	if client {
		slot = "client\x00" + slot // environment names never hold a NUL
	}
	if e, ok := st.events[slot]; ok && e.etag == rep.ETag {
		return e.data
	}
	type message struct {
		Type   string          `json:"type"`
		ETag   string          `json:"etag"`
		Config json.RawMessage `json:"config,omitempty"`
	}
	m := message{Type: "refetchEvaluation", ETag: rep.ETag}
	if len(rep.Body) <= StreamInlineMax {
		m.Config = rep.Body
	}
	data, err := json.Marshal(m)
	if err != nil { // cannot happen: Body is the JSON the cache built
		data, _ = json.Marshal(message{Type: m.Type, ETag: m.ETag})
	}
	var b bytes.Buffer
	b.Grow(len(data) + len(rep.ETag) + 16)
	b.WriteString("id: ")
	b.WriteString(rep.ETag)
	b.WriteString("\ndata: ")
	b.Write(data) // json.Marshal escapes newlines: one line
	b.WriteString("\n\n")
	st.events[slot] = streamEvent{etag: rep.ETag, data: b.Bytes()}
	return b.Bytes()
}

// sdkKey returns the key an SDK request presents: the apiKey query
// parameter, or else an Authorization bearer token (EventSource clients
// cannot set headers; others should not put keys in URLs).
func sdkKey(r *http.Request) string {
	if key := queryParam(r.URL.RawQuery, "apiKey"); key != "" {
		return key
	}
	key, _ := httpx.BearerToken(r)
	return key
}

// streamKey resolves the key of a stream request to the configuration it
// reads and the form of it the key gets, or nil. It is the one place that
// decides who may open a stream and keep it open. A client key gets the
// CLIENT (obfuscated) form, as from /flag-config/v1/config, never the
// SERVER one: its ETags and its inline documents are the CLIENT form's. A
// CLIENT form that cannot be built refuses the key (nil) rather than fall
// back to SERVER.
func (s *Server) streamKey(key string) (p *publish.Published, rep publish.Representation, client bool) {
	if key == "" {
		return nil, rep, false
	}
	if p, client, _ = s.cache.Lookup(key); p == nil {
		return nil, rep, false
	}
	if !client {
		return p, publish.Representation{Body: p.Body, Gzip: p.Gzip, ETag: p.ETag, GzipETag: p.GzipETag}, false
	}
	rep, err := p.Client()
	if err != nil {
		return nil, rep, true
	}
	return p, rep, true
}

// stream serves GET /api/flag-config/v1/stream.
func (s *Server) stream(w http.ResponseWriter, r *http.Request) {
	key := sdkKey(r)
	p, _, _ := s.streamKey(key)
	if p == nil {
		h := w.Header()
		h["Content-Type"] = hdrText
		h["Cache-Control"] = hdrNoStore
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("unauthorized: missing, invalid or revoked apiKey\n"))
		return
	}
	s.streams.init()
	limit := s.streamLimit
	if limit <= 0 {
		limit = StreamLimit
	}
	if n := s.streams.open.Add(1); n > int64(limit) {
		s.streams.open.Add(-1)
		h := w.Header()
		h["Content-Type"] = hdrText
		h["Cache-Control"] = hdrNoStore
		h["Retry-After"] = []string{"30"}
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("too many configuration streams on this server; poll /api/flag-config/v1/config meanwhile\n"))
		return
	}
	defer s.streams.open.Add(-1)
	env := p.Environment
	changes, unsubscribe := s.cache.Subscribe(env)
	defer unsubscribe()

	// The server's write timeout is for ordinary responses: a stream lives
	// as long as its client, and bounds each write instead. (Its read
	// timeout does not apply: net/http clears the read deadline once the
	// handler runs.)
	rc := http.NewResponseController(w)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}

	h := w.Header()
	h["Content-Type"] = hdrEventStream
	h["Cache-Control"] = hdrNoStore
	h["X-Accel-Buffering"] = []string{"no"} // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	sent := r.Header.Get("Last-Event-ID")
	hello := []byte("retry: " + strconv.Itoa(streamRetryMillis) + "\n\n")
	if !write(hello) {
		return
	}
	// announce sends the current configuration unless the client has it.
	// It ends the stream (false) when the key no longer reads env.
	announce := func() bool {
		cur, rep, client := s.streamKey(key)
		if cur == nil || cur.Environment != env {
			return false
		}
		if sent == rep.ETag || sent == rep.GzipETag { // a client that polled with gzip has the latter
			return true
		}
		sent = rep.ETag
		return write(s.streams.event(cur, rep, client))
	}
	if !announce() {
		return
	}
	heartbeat := time.NewTicker(StreamHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.streams.done:
			return
		case <-changes:
			if !announce() {
				return
			}
		case <-heartbeat.C:
			// A revoked key loses its stream within a heartbeat.
			if p, _, _ := s.streamKey(key); p == nil || !write([]byte(":\n\n")) {
				return
			}
		}
	}
}
