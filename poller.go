package allot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

const (
	configPath = "/flag-config/v1/config"
	// maxConfigSize bounds a configuration response; a larger body is
	// truncated and so rejected.
	maxConfigSize = 64 << 20
	// firstBackoff is the wait after the first failed fetch; it doubles with
	// each further failure up to Config.MaxBackoff.
	firstBackoff = time.Second
)

// poller is the polling data source: it fetches the configuration now
// and then every PollInterval (jittered), backing off exponentially after
// failures, until its context ends. A wait the server asks for with
// Retry-After is obeyed up to MaxBackoff, never longer: one bad answer must
// not stop updates for an hour. fetchNow cuts the current wait short (for a
// stream that announces a new configuration).
type poller struct {
	cfg    Config
	wake   chan struct{}
	pushes *inbox // documents a stream delivered (stream.go)
}

var _ dataSource = (*poller)(nil)

func newPoller(cfg Config) *poller {
	return &poller{cfg: cfg, wake: make(chan struct{}, 1), pushes: newInbox()}
}

// offer hands the poller a document a stream delivered, to install on the
// poller's goroutine, so that documents from the server are installed one
// at a time in the order they were learned of. It never blocks; a document
// not yet installed is replaced by a newer one.
func (p *poller) offer(d pushed) { p.pushes.put(d) }

// installPushed installs the pending pushed document, if any. It reports
// false when the document was refused, so that the poller fetches instead.
func (p *poller) installPushed(s sink) bool {
	d, ok := p.pushes.take()
	if !ok {
		return true
	}
	if d.etag != "" && d.etag == s.etag() {
		return true // served already (the stream's first event often repeats the first fetch)
	}
	if err := s.install(d.doc, origin{source: SourceServer, etag: d.etag, cache: true}); err != nil {
		p.cfg.Logger.Warn("allot: the stream delivered an invalid configuration; fetching", "error", err)
		return false
	}
	s.attempted(nil)
	return true
}

// fetchNow asks for a fetch without waiting for the next poll. It never
// blocks; requests made while one is pending are merged.
func (p *poller) fetchNow() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *poller) run(ctx context.Context, s sink) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	failures := 0
	for {
		retryAfter, err := p.fetchOnce(ctx, s)
		if ctx.Err() != nil {
			return
		}
		s.attempted(err)
		var wait time.Duration
		if err != nil {
			failures++
			wait = min(max(retryAfter, backoff(failures, p.cfg.MaxBackoff)), p.cfg.MaxBackoff)
			p.cfg.Logger.Warn("allot: configuration fetch failed", "error", err, "failures", failures, "retryIn", wait)
		} else {
			failures = 0
			wait = jitter(p.cfg.PollInterval)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
				break wait
			case <-p.wake:
				break wait
			case <-p.pushes.ready:
				if !p.installPushed(s) {
					break wait
				}
			}
		}
	}
}

// backoff returns the wait after n consecutive failures: 1s, 2s, 4s...
// capped at limit, each drawn uniformly from its upper half.
func backoff(n int, limit time.Duration) time.Duration {
	d := firstBackoff
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + rand.N(d/2+1)
}

// jitter shortens a poll interval by up to a tenth, at random.
func jitter(d time.Duration) time.Duration {
	return d - rand.N(d/10+1)
}

// statusError is a response that is not a configuration.
type statusError struct {
	code int
}

func (e *statusError) Error() string {
	return "server answered " + strconv.Itoa(e.code) + " " + http.StatusText(e.code)
}

// fetchOnce requests the configuration once and installs it if it is
// valid. It returns the wait the server asked for with Retry-After, if
// any.
func (p *poller) fetchOnce(ctx context.Context, s sink) (retryAfter time.Duration, err error) {
	q := url.Values{}
	q.Set("apiKey", p.cfg.SDKKey)
	q.Set("sdkName", SDKName)
	q.Set("sdkVersion", Version)
	endpoint := p.cfg.BaseURL + configPath
	if p.cfg.HTTPClient.Timeout <= 0 {
		// A caller's client without a timeout must not stall polling.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultRequestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"?"+q.Encode(), nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", endpoint, redact(err))
	}
	req.Header.Set("Accept", "application/json")
	etag := s.etag()
	conditional := etag != ""
	if conditional {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", endpoint, redact(err))
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
		_ = resp.Body.Close()
	}()
	retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), p.cfg.now())
	switch {
	case resp.StatusCode == http.StatusNotModified && conditional:
		return 0, nil
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		s.refused()
		return retryAfter, fmt.Errorf("GET %s: %w (%d)", endpoint, ErrUnauthorized, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return retryAfter, fmt.Errorf("GET %s: %w", endpoint, &statusError{resp.StatusCode})
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigSize))
	if err != nil {
		return 0, fmt.Errorf("GET %s: reading the body: %w", endpoint, redact(err))
	}
	if err := s.install(body, origin{source: SourceServer, etag: resp.Header.Get("ETag"), cache: true}); err != nil {
		return 0, fmt.Errorf("GET %s: not a valid configuration: %w", endpoint, err)
	}
	return 0, nil
}

// redact strips the request URL, which carries the SDK key, from an error
// of the HTTP client.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// writeFileAtomic replaces name with data so that a reader (or a crash)
// sees the old file or the new one, never a mix.
func writeFileAtomic(name string, data []byte) error {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
