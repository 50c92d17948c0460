package allot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Data-source modes reported by Status.Mode.
const (
	ModeOffline   = "offline"   // Config.Offline: no network
	ModePolling   = "polling"   // fetching every PollInterval; no stream is open
	ModeStreaming = "streaming" // a stream is open: changes arrive as they are published
)

const (
	streamPath = "/flag-config/v1/stream"
	// streamIdleTimeout drops a stream on which nothing, not even a
	// heartbeat (every 15 s), arrived for this long: a connection that died
	// without a word (a NAT or proxy dropping it) is noticed.
	streamIdleTimeout = 45 * time.Second
	// maxStreamLine bounds one line of the stream (an event carrying a
	// document is one line; the server inlines documents up to 64 KiB).
	maxStreamLine = 4 << 20
)

// streamer is the streaming data source: it holds a server-sent event
// stream open and, for each event, hands the document it carries to the
// poller to install, or asks the poller to fetch. The poller keeps polling
// meanwhile (a conditional request, answered 304, every PollInterval), so
// a stream that breaks silently, or a server without streams, costs at most
// a poll interval. A stream that fails is reopened after a backoff with
// jitter; a server that answers 404 (no stream endpoint) is not asked
// again.
//
// Every document from the server is installed by the poller's goroutine,
// in the order it learns of them, so that a poll answered just before an
// event cannot replace the event's newer document.
type streamer struct {
	cfg    Config
	poller *poller
	client *http.Client
}

var _ dataSource = (*streamer)(nil)

func newStreamer(cfg Config, p *poller) *streamer {
	// The configured client's timeout would cut every stream: a stream
	// bounds itself with streamIdleTimeout instead.
	hc := *cfg.HTTPClient
	hc.Timeout = 0
	return &streamer{cfg: cfg, poller: p, client: &hc}
}

// streamRefused is a stream the server will not serve (no endpoint, or not
// an event stream): polling is all there is.
type streamRefused struct{ reason string }

func (e *streamRefused) Error() string { return "the server has no configuration stream: " + e.reason }

func (st *streamer) run(ctx context.Context, s sink) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	failures := 0
	for {
		opened, err := st.stream(ctx, s)
		s.mode(ModePolling)
		if ctx.Err() != nil {
			return
		}
		var refused *streamRefused
		if errors.As(err, &refused) {
			st.cfg.Logger.Info("allot: streaming unavailable; polling", "reason", refused.reason, "pollInterval", st.cfg.PollInterval)
			return
		}
		if opened {
			failures = 0 // it worked for a while: reconnect soon
		}
		failures++
		wait := backoff(failures, st.cfg.MaxBackoff)
		st.cfg.Logger.Warn("allot: configuration stream ended; polling until it reopens", "error", err, "failures", failures, "retryIn", wait)
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// stream opens one stream and reads it until it ends. opened says whether
// the server accepted it.
func (st *streamer) stream(ctx context.Context, s sink) (opened bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := url.Values{}
	q.Set("sdkName", SDKName)
	q.Set("sdkVersion", Version)
	endpoint := st.cfg.BaseURL + streamPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", endpoint, redact(err))
	}
	// The key goes in a header: the URL of a long request is what proxies log.
	req.Header.Set("Authorization", "Bearer "+st.cfg.SDKKey)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if etag := s.etag(); etag != "" {
		req.Header.Set("Last-Event-ID", etag)
	}
	// Until the headers come, the request timeout applies; then the idle
	// timeout, reset by every line.
	idle := time.AfterFunc(DefaultRequestTimeout, cancel)
	defer idle.Stop()
	resp, err := st.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("GET %s: %w", endpoint, redact(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return false, fmt.Errorf("GET %s: %w (%d)", endpoint, ErrUnauthorized, resp.StatusCode)
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotImplemented:
		return false, &streamRefused{reason: (&statusError{resp.StatusCode}).Error()}
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("GET %s: %w", endpoint, &statusError{resp.StatusCode})
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, &streamRefused{reason: "the answer is " + resp.Header.Get("Content-Type") + ", not text/event-stream"}
	}
	s.mode(ModeStreaming)
	idle.Reset(st.cfg.streamIdle)
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 4<<10), maxStreamLine)
	var id string
	var data bytes.Buffer
	for sc.Scan() {
		idle.Reset(st.cfg.streamIdle)
		line := sc.Bytes()
		if len(line) == 0 { // the end of an event
			if data.Len() > 0 {
				st.dispatch(id, data.Bytes())
			}
			id = ""
			data.Reset()
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			id = string(value)
		case "data":
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.Write(value)
		}
		// "" (a comment: a heartbeat), "event", "retry": nothing to do.
	}
	err = sc.Err()
	if err == nil {
		err = errors.New("the server closed the stream")
	} else if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("nothing received for %s: %w", st.cfg.streamIdle, redact(err))
	}
	return true, fmt.Errorf("GET %s: %w", endpoint, redact(err))
}

// streamMessage is the data of a stream event.
type streamMessage struct {
	Type   string          `json:"type"`
	ETag   string          `json:"etag"`
	Config json.RawMessage `json:"config"`
}

// dispatch hands an event to the poller: its document, or a fetch.
func (st *streamer) dispatch(id string, data []byte) {
	var m streamMessage
	if err := json.Unmarshal(data, &m); err != nil {
		st.cfg.Logger.Warn("allot: unreadable stream event; fetching", "error", err)
		st.poller.fetchNow()
		return
	}
	if m.ETag == "" {
		m.ETag = id
	}
	if len(m.Config) > 0 {
		st.poller.offer(pushed{doc: m.Config, etag: m.ETag})
		return
	}
	st.poller.fetchNow()
}

// pushed is a document a stream delivered, waiting for the poller.
type pushed struct {
	doc  []byte
	etag string
}

// inbox holds the latest pushed document not yet installed.
type inbox struct {
	mu     sync.Mutex
	latest *pushed
	ready  chan struct{} // one token while latest is set
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

func (b *inbox) put(p pushed) {
	b.mu.Lock()
	b.latest = &p
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

func (b *inbox) take() (pushed, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.latest == nil {
		return pushed{}, false
	}
	p := *b.latest
	b.latest = nil
	return p, true
}
