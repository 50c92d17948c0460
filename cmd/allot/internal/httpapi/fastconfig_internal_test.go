package httpapi

import (
	"bufio"
	"bytes"
	"net/http"
	"slices"
	"testing"
)

// FuzzParseHead: a head the fast path accepts is one net/http reads the
// same way: a GET or HEAD of the config path with the same query, the same
// Accept-Encoding and If-None-Match values, no body, no Origin, keep-alive.
func FuzzParseHead(f *testing.F) {
	for _, s := range []string{
		"GET /api/flag-config/v1/config?apiKey=k HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /api/flag-config/v1/config?apiKey=k&sdkName=js-client-sdk HTTP/1.1\r\nHost: 127.0.0.1:80\r\nAccept-Encoding: gzip\r\nIf-None-Match: \"a\", W/\"b\"\r\n\r\n",
		"GET /api/flag-config/v1/config?apiKey=k HTTP/1.1\r\nhost: x\r\naccept-encoding: br\r\nAccept-Encoding:gzip \r\nConnection: Keep-Alive\r\n\r\n",
		"GET /api/flag-config/v1/config?apiKey=k HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		end := headEnd(in, 0)
		if end < 0 {
			return
		}
		h := in[:end+len(crlfcrlf)]
		var r fastReq
		if !parseHead(h, &r) {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(h)))
		if err != nil {
			t.Fatalf("the fast path accepts %q, net/http refuses it: %v", h, err)
		}
		want := http.MethodGet
		if r.head {
			want = http.MethodHead
		}
		switch {
		case req.Method != want, req.URL.Path != configPath, req.URL.RawQuery != r.query, req.Proto != "HTTP/1.1":
			t.Fatalf("%q: net/http reads %s %s ? %s %s; the fast path %v %q", h, req.Method, req.URL.Path, req.URL.RawQuery, req.Proto, r.head, r.query)
		case !slices.Equal(req.Header["Accept-Encoding"], r.ae[:r.nae]), !slices.Equal(req.Header["If-None-Match"], r.inm[:r.ninm]):
			t.Fatalf("%q: net/http reads %q and %q; the fast path %q and %q", h, req.Header["Accept-Encoding"], req.Header["If-None-Match"], r.ae[:r.nae], r.inm[:r.ninm])
		case req.ContentLength != 0, len(req.TransferEncoding) > 0, req.Close, len(req.Header["Origin"]) > 0, req.Host == "":
			t.Fatalf("%q: net/http reads a body, a close, an Origin or no Host: %+v", h, req)
		}
	})
}
