package httpapi

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Listener wraps ln so that the SDK config endpoint can send a response,
// headers and body, in one write to the socket. net/http buffers a
// response's headers and writes a large body around that buffer, which
// costs two write system calls per configuration served; on a server whose
// busiest request is that one, the second call was most of the gap to
// nginx (issue 11, item 5). Serve with ConnContext as the http.Server's
// ConnContext, or the wrapper does nothing.
func Listener(ln net.Listener) net.Listener { return &listener{ln} }

// ConnContext is the http.Server ConnContext that lets handlers reach the
// connection Listener wrapped.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if cc, ok := c.(*coalescingConn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

type connKey struct{}

type listener struct{ net.Listener }

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coalescingConn{Conn: c}, nil
}

// coalescingConn gathers what is written between hold and release and
// writes it at once. HTTP/1 serves a connection's requests one at a time on
// one goroutine, the only one that writes, so the fields need no lock.
type coalescingConn struct {
	net.Conn
	held *[]byte // non-nil between hold and release
}

// coalesceBufs holds gathering buffers between responses, so that idle
// keep-alive connections hold none.
var coalesceBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func (c *coalescingConn) Write(p []byte) (int, error) {
	if c.held != nil {
		*c.held = append(*c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite keeps net/http's half-close of a TCP connection working.
func (c *coalescingConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *coalescingConn) hold() {
	c.held = coalesceBufs.Get().(*[]byte)
	*c.held = (*c.held)[:0]
}

// release writes what was gathered, in one call.
func (c *coalescingConn) release() error {
	b := c.held
	c.held = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= 4<<20 { // a huge document's buffer is not kept
		coalesceBufs.Put(b)
	}
	return err
}

// writeOnce sends status, the headers already set and body in one write
// to the socket when the connection allows it, else as net/http does.
func writeOnce(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	cc, _ := r.Context().Value(connKey{}).(*coalescingConn)
	if cc == nil || cc.held != nil {
		w.WriteHeader(status)
		w.Write(body)
		return
	}
	cc.hold()
	w.WriteHeader(status)
	w.Write(body)
	// Push what net/http still buffers into the gathering buffer.
	if err := http.NewResponseController(w).Flush(); err != nil {
		cc.held = nil
		cc.Conn.Close()
		return
	}
	if err := cc.release(); err != nil {
		cc.Conn.Close() // net/http learns of it at its next read
	}
}
