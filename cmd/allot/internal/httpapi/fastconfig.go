package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The fast path of the SDK config endpoint (issue 11, item 5).
//
// A server's busiest request is an SDK polling its configuration, and most
// of those are answered from memory with a 304 or the pre-compressed body.
// Through net/http each costs about twice the CPU nginx spends serving the
// same bytes: the request is parsed into maps, a goroutine reads in the
// background while the handler runs, deadlines and buffers are set up and
// torn down, and the response header map is sorted and written. Profiles
// show that cost in net/http and the runtime, not in the handler, so no
// change to the handler closes the gap.
//
// FastListener sits between the socket and net/http. Each new plain-HTTP
// connection is read first by a small HTTP/1.1 loop that answers only the
// one request it fully understands: GET or HEAD of
// /api/flag-config/v1/config with a live key, no body, no Origin (CORS
// stays with the middleware), nothing unusual in the head. The decision
// what to send is the handler's own (configRepresentation,
// chooseRepresentation), and the response is byte for byte the one net/http
// would send, in one writev. The first request the loop does not answer
// ends its part: the connection, with the bytes already read, is handed to
// net/http through Accept, and net/http serves it from then on (every
// other route, every error answer, every odd request, exactly as before).
// A test compares the two paths' answers byte for byte.

// ConfigRoute is the route pattern the config endpoint's requests are
// counted under (the metrics label net/http's mux gives them).
const ConfigRoute = "GET /api/flag-config/v1/config"

const (
	configPath = "/api/flag-config/v1/config"
	// FastHeadMax bounds a request head the fast path reads; a longer one
	// is handed to net/http with what was read (its limit is the server's
	// MaxHeaderBytes).
	FastHeadMax = 4 << 10
	// deadlineSlack: a deadline may come this much later than its timeout
	// asks, so that keep-alive requests do not reset timers each time.
	deadlineSlack = time.Second
)

// FastOptions configures a FastListener. Zero timeouts mean none.
type FastOptions struct {
	// Observe records a request the fast path answered, as the root
	// middleware records one net/http served (route ConfigRoute).
	Observe func(status int, took time.Duration)
	// HeaderTimeout bounds the time to read a request head once it has
	// begun; IdleTimeout the wait for the next request on a connection;
	// WriteTimeout one response's write.
	HeaderTimeout, IdleTimeout, WriteTimeout time.Duration
	Log                                      *slog.Logger
}

// FastStats counts what a FastListener did.
type FastStats struct {
	Served    uint64 // requests the fast path answered
	HandedOff uint64 // connections handed to net/http
}

// FastListener is a net.Listener for an http.Server that answers the
// config endpoint's common requests itself (see above). Serve the
// http.Server on it with ConnContext as its ConnContext (the connections it
// hands over also write config responses at once, writeOnce). After the
// http.Server's Shutdown (which closes the listener), Wait waits for the
// connections the fast path still holds.
type FastListener struct {
	ln  net.Listener
	api *Server
	opt FastOptions

	conns chan net.Conn // handed to net/http by Accept
	errs  chan error    // the inner listener's Accept errors, for Accept
	done  chan struct{} // closed by Close

	closeOnce sync.Once
	closeErr  error
	closing   atomic.Bool
	mu        sync.Mutex
	live      map[*fastConn]struct{} // connections in the fast loop
	wg        sync.WaitGroup         // the accept loop and every fast loop

	served, handed atomic.Uint64
	date           atomic.Pointer[dateLine]
}

// NewFastListener starts accepting on ln; Close stops it.
func NewFastListener(ln net.Listener, api *Server, opt FastOptions) *FastListener {
	if opt.Log == nil {
		opt.Log = discardLogger()
	}
	if opt.Observe == nil {
		opt.Observe = func(int, time.Duration) {}
	}
	l := &FastListener{ln: ln, api: api, opt: opt, conns: make(chan net.Conn), errs: make(chan error),
		done: make(chan struct{}), live: map[*fastConn]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Stats reports what the fast path did so far.
func (l *FastListener) Stats() FastStats {
	return FastStats{Served: l.served.Load(), HandedOff: l.handed.Load()}
}

// Accept returns the next connection for net/http: one the fast path
// handed over, or an error of the inner listener.
func (l *FastListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr is the inner listener's address.
func (l *FastListener) Addr() net.Addr { return l.ln.Addr() }

// Close stops accepting and ends the fast loops' idle waits: a connection
// waiting for its next request is closed, one being answered is closed
// after its answer. Wait waits for them.
func (l *FastListener) Close() error {
	l.closeOnce.Do(func() {
		l.closing.Store(true)
		close(l.done)
		l.closeErr = l.ln.Close()
		l.mu.Lock()
		for fc := range l.live {
			// A fast loop checks closing after setting its own read
			// deadline and before each read, so either it sees closing or
			// this deadline interrupts its read.
			fc.c.SetReadDeadline(aLongTimeAgo)
		}
		l.mu.Unlock()
	})
	return l.closeErr
}

var aLongTimeAgo = time.Unix(1, 0)

// Wait waits, after Close, for the fast loops to end; when ctx ends first
// it closes their connections and waits for the loops to notice.
func (l *FastListener) Wait(ctx context.Context) {
	ended := make(chan struct{})
	go func() { l.wg.Wait(); close(ended) }()
	select {
	case <-ended:
		return
	case <-ctx.Done():
	}
	l.mu.Lock()
	for fc := range l.live {
		fc.c.Close()
	}
	l.mu.Unlock()
	<-ended
}

func (l *FastListener) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			// net/http decides: it retries a temporary error after a pause
			// (and calls Accept again, which takes the next one from
			// here), and stops on any other.
			select {
			case l.errs <- err:
			case <-l.done:
				return
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				continue
			}
			return
		}
		fc := &fastConn{c: c}
		l.mu.Lock()
		if l.closing.Load() {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.live[fc] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.serve(fc)
	}
}

// fastConn is one connection in the fast loop; only its goroutine uses it.
type fastConn struct {
	c       net.Conn
	buf     []byte // the request bytes read and not yet answered
	out     []byte // the response head being built
	vec     [2][]byte
	bufs    net.Buffers
	key     string    // the last apiKey, kept to avoid a copy per request
	readDL  time.Time // the read deadline set, zero if none
	writeDL time.Time
}

func (l *FastListener) serve(fc *fastConn) {
	defer l.wg.Done()
	var pending []byte
	handoff := false
	defer func() {
		if v := recover(); v != nil {
			l.opt.Log.Error("panic in the config fast path", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			handoff = false
		}
		l.mu.Lock()
		delete(l.live, fc)
		l.mu.Unlock()
		if !handoff || !l.handOff(fc, pending) {
			fc.c.Close()
		}
	}()
	pending, handoff = l.loop(fc)
}

// handOff gives the connection to net/http with the bytes the fast loop
// read and did not answer; false if the listener closed first.
func (l *FastListener) handOff(fc *fastConn, pending []byte) bool {
	var c net.Conn = fc.c
	if len(pending) > 0 {
		c = &replayConn{Conn: c, pending: pending}
	}
	// Clear the fast loop's deadlines: net/http sets its own.
	if !fc.readDL.IsZero() || !fc.writeDL.IsZero() {
		fc.c.SetDeadline(time.Time{})
	}
	select {
	case l.conns <- &coalescingConn{Conn: c}:
		l.handed.Add(1)
		return true
	case <-l.done:
		return false
	}
}

// loop answers requests until one is not for it (handoff true, with the
// bytes read so far) or the connection ends (handoff false).
func (l *FastListener) loop(fc *fastConn) (pending []byte, handoff bool) {
	fc.buf = make([]byte, 0, FastHeadMax)
	for {
		// Read until a whole head is in, or the bytes cannot be one the
		// fast path answers. Each read's bytes are scanned once.
		end := headEnd(fc.buf, 0)
		for end < 0 {
			if !maybeFast(fc.buf) || len(fc.buf) == cap(fc.buf) {
				return fc.buf, true
			}
			now := time.Now()
			if len(fc.buf) == 0 {
				l.readDeadline(fc, now, l.opt.IdleTimeout)
			} else {
				l.readDeadline(fc, now, l.opt.HeaderTimeout)
			}
			if l.closing.Load() {
				return nil, false
			}
			old := len(fc.buf)
			n, err := fc.c.Read(fc.buf[old:cap(fc.buf)])
			fc.buf = fc.buf[:old+n]
			if err != nil {
				// The client went, or a timeout: net/http closes such a
				// connection without an answer too.
				return nil, false
			}
			if bareLF(fc.buf, old) {
				return fc.buf, true // net/http reads such lines; the fast path not
			}
			end = headEnd(fc.buf, old)
		}
		end += len(crlfcrlf)
		start := time.Now()
		status, ok := l.answer(fc, fc.buf[:end], start)
		if !ok {
			return fc.buf, true
		}
		l.served.Add(1)
		l.opt.Observe(status, time.Since(start))
		// Keep what a pipelining client sent after this request.
		fc.buf = fc.buf[:copy(fc.buf, fc.buf[end:])]
	}
}

// readDeadline keeps the read deadline between d and d plus the slack
// after now: never earlier than asked, and moved only about once per
// slack on a busy keep-alive connection.
func (l *FastListener) readDeadline(fc *fastConn, now time.Time, d time.Duration) {
	if d <= 0 {
		return
	}
	want := now.Add(d)
	if fc.readDL.Before(want) || fc.readDL.After(want.Add(deadlineSlack)) {
		fc.readDL = want.Add(deadlineSlack)
		fc.c.SetReadDeadline(fc.readDL)
	}
}

var crlfcrlf = []byte("\r\n\r\n")

// headEnd returns the index of the CRLF CRLF ending the head in b, or -1,
// looking from where the bytes read last (from) could complete it.
func headEnd(b []byte, from int) int {
	from = max(0, from-len(crlfcrlf)+1)
	if i := bytes.Index(b[from:], crlfcrlf); i >= 0 {
		return from + i
	}
	return -1
}

// bareLF reports whether a line in b, read from from on, ends in a LF
// without a CR.
func bareLF(b []byte, from int) bool {
	for i := from; i < len(b); i++ {
		if b[i] == '\n' && (i == 0 || b[i-1] != '\r') {
			return true
		}
	}
	return false
}

// maybeFast reports whether b could begin a request the fast path
// answers, so that anything else goes to net/http at its first bytes.
func maybeFast(b []byte) bool {
	for _, m := range [...]string{"GET " + configPath, "HEAD " + configPath} {
		if n := min(len(b), len(m)); string(b[:n]) == m[:n] {
			return true
		}
	}
	return false
}

// fastReq is what the fast path reads of a request head.
type fastReq struct {
	head      bool   // HEAD, not GET
	query     string // the raw query (a view of the head's bytes)
	ae, inm   [4]string
	nae, ninm int
}

// answer answers the request whose head is h, if the fast path may; ok
// false leaves it, untouched, to net/http.
func (l *FastListener) answer(fc *fastConn, h []byte, now time.Time) (status int, ok bool) {
	var r fastReq
	if !parseHead(h, &r) {
		return 0, false
	}
	key := queryParam(r.query, "apiKey")
	if key == "" {
		return 0, false
	}
	if key != fc.key {
		fc.key = strings.Clone(key) // key views the read buffer
	}
	p, client, _ := l.api.cache.Lookup(fc.key)
	if p == nil || p.Body == nil {
		return 0, false // net/http's 401 or 503
	}
	rep, err := configRepresentation(p, client, r.query)
	if err != nil {
		return 0, false
	}
	body, etag, gz, notModified := chooseRepresentation(&rep, r.ae[:r.nae], r.inm[:r.ninm])
	// The head, as net/http writes it: the handler's headers sorted by
	// name, then Date.
	b := fc.out[:0]
	status = http.StatusOK
	if notModified {
		status = http.StatusNotModified
		b = append(b, "HTTP/1.1 304 Not Modified\r\nCache-Control: "...)
		b = append(b, hdrCacheControl[0]...)
	} else {
		b = append(b, "HTTP/1.1 200 OK\r\nCache-Control: "...)
		b = append(b, hdrCacheControl[0]...)
		if gz {
			b = append(b, "\r\nContent-Encoding: gzip"...)
		}
		b = append(b, "\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\nContent-Type: "...)
		b = append(b, hdrJSON[0]...)
	}
	b = append(b, "\r\nEtag: "...)
	b = append(b, etag...)
	b = append(b, "\r\nVary: "...)
	b = append(b, hdrVary[0]...)
	b = append(b, "\r\n"...)
	b = append(b, l.dateLine(now)...)
	b = append(b, "\r\n"...)
	fc.out = b
	if d := l.opt.WriteTimeout; d > 0 {
		if want := now.Add(d); fc.writeDL.Before(want) {
			fc.writeDL = want.Add(deadlineSlack)
			fc.c.SetWriteDeadline(fc.writeDL)
		}
	}
	if notModified || r.head {
		_, err = fc.c.Write(b)
	} else {
		// Head and body in one system call (writev), the body not copied.
		fc.vec = [2][]byte{b, body}
		fc.bufs = fc.vec[:]
		_, err = fc.bufs.WriteTo(fc.c)
		fc.vec = [2][]byte{}
	}
	if err != nil {
		// The request was answered as far as the client let it: count it,
		// and let the next read end the connection.
		fc.c.Close()
	}
	return status, true
}

// parseHead reads a request head (ending in CRLF CRLF) the fast path
// answers, strictly: anything net/http might read differently, answer
// with an error, or treat as more than a plain GET (a body, an upgrade,
// an Expect, CORS, Connection options, HTTP/1.0, a bad Host) is refused
// and left to net/http. The strings in r view h.
func parseHead(h []byte, r *fastReq) bool {
	line, rest, _ := bytes.Cut(h, crlf)
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		line, r.head = line[5:], true
	default:
		return false
	}
	target, ok := bytes.CutSuffix(line, []byte(" HTTP/1.1"))
	if !ok {
		return false
	}
	for _, c := range target {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	path, query, _ := bytes.Cut(target, []byte("?"))
	if string(path) != configPath {
		return false
	}
	r.query = view(query)
	hosts := 0
	for len(rest) > 2 { // the last line is the empty one
		line, rest, _ = bytes.Cut(rest, crlf)
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			return false
		}
		for _, c := range name {
			if !isTokenByte(c) {
				return false
			}
		}
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return false
			}
		}
		value = bytes.Trim(value, " \t")
		switch {
		case equalFold(name, "host"):
			hosts++
			if len(value) == 0 || !validHost(value) {
				return false
			}
		case equalFold(name, "accept-encoding"):
			if r.nae == len(r.ae) {
				return false
			}
			r.ae[r.nae] = view(value)
			r.nae++
		case equalFold(name, "if-none-match"):
			if r.ninm == len(r.inm) {
				return false
			}
			r.inm[r.ninm] = view(value)
			r.ninm++
		case equalFold(name, "connection"):
			if !equalFold(value, "keep-alive") {
				return false
			}
		case equalFold(name, "origin"), equalFold(name, "content-length"), equalFold(name, "transfer-encoding"),
			equalFold(name, "expect"), equalFold(name, "upgrade"), equalFold(name, "te"), equalFold(name, "trailer"):
			return false
		}
	}
	return hosts == 1
}

var crlf = []byte("\r\n")

// view is b as a string without a copy. The fast path uses such strings
// only while it answers the request whose bytes they view; the read buffer
// is not touched until then, and nothing keeps them (the apiKey is copied).
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// isTokenByte: RFC 9110's tchar.
func isTokenByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), c) >= 0
}

// validHost accepts a plain host[:port] (names, IPv4, bracketed IPv6);
// anything else goes to net/http, which decides.
func validHost(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == ':', c == '[', c == ']', c == '_':
		default:
			return false
		}
	}
	return true
}

// dateLine is the Date header of one second.
type dateLine struct {
	sec  int64
	line []byte // "Date: ...\r\n"
}

func (l *FastListener) dateLine(now time.Time) []byte {
	sec := now.Unix()
	if d := l.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	line = append(line, "\r\n"...)
	l.date.Store(&dateLine{sec: sec, line: line})
	return line
}

// replayConn returns the bytes the fast path read before the socket's.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite keeps net/http's half-close of a TCP connection working.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
