package server

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

// BenchmarkConfigLoopback serves the SDK config endpoint (1,000 flags, the
// gzip body of about 22 KB, or a 304) to 16 keep-alive connections on
// loopback, from the fast path and from net/http alone (a second server on
// the same database, NoFastConfig), in the same run. The client is a few
// lines of raw HTTP/1.1 that allocate nothing, so allocs/op is the
// server's per request.
func BenchmarkConfigLoopback(b *testing.B) {
	path, secret := seedBench(b)
	fast, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DB: path, PollInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer fast.Close(context.Background())
	plain, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DB: path, PollInterval: time.Hour, NoFastConfig: true})
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close(context.Background())
	p := fast.cache.ForKey(secret)
	target := "/api/flag-config/v1/config?apiKey=" + secret + "&sdkName=node-server-sdk&sdkVersion=4.0.2"
	for _, c := range []struct {
		name, inm, status string
	}{{"NotModified", p.GzipETag, "304"}, {"Gzip", "", "200"}} {
		req := "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n"
		if c.inm != "" {
			req += "If-None-Match: " + c.inm + "\r\n"
		}
		req += "\r\n"
		for _, s := range []struct {
			name string
			srv  *Server
		}{{"Fast", fast}, {"NetHTTP", plain}} {
			b.Run(c.name+"/"+s.name, func(b *testing.B) {
				b.SetParallelism(8) // 16 connections on 2 cores, as wrk -c16
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					conn, err := net.Dial("tcp", s.srv.Addr())
					if err != nil {
						b.Error(err)
						return
					}
					defer conn.Close()
					br := bufio.NewReaderSize(conn, 64<<10)
					wire := []byte(req)
					for pb.Next() {
						if _, err := conn.Write(wire); err != nil {
							b.Error(err)
							return
						}
						status, err := readResponse(br)
						if err != nil || status != c.status {
							b.Errorf("status %q, %v", status, err)
							return
						}
					}
				})
			})
		}
	}
}

// readResponse reads one response, returning its status code, without
// allocating.
func readResponse(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	var status string
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")):
		status = "200"
	case bytes.HasPrefix(line, []byte("HTTP/1.1 304 ")):
		status = "304"
	default:
		status = "other"
	}
	length := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			for _, d := range bytes.TrimSpace(v) {
				length = length*10 + int(d-'0')
			}
		}
	}
	if status == "200" {
		_, err = br.Discard(length)
	}
	return status, err
}
