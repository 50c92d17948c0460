// Package s3test runs a real S3-compatible server for tests: SeaweedFS's
// `weed server -s3` on free loopback ports, with one access key, in a
// temporary directory, stopped when the test ends.
//
// The binary comes from ALLOT_WEED (scripts/test builds it once from the
// module proxy's seaweedfs source and caches it under $HOME/go/bin), else
// from PATH. When ALLOT_WEED names a binary that is not there, or
// ALLOT_S3_TESTS=on, a missing binary fails the test; otherwise it is
// skipped with a loud message saying how to get it.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Version is the seaweedfs module version scripts/test builds.
const Version = "v0.0.0-20261109003541-7506e5f91cd6"

// Server is a running S3-compatible server.
type Server struct {
	// Endpoint is http://127.0.0.1:PORT.
	Endpoint             string
	AccessKey, SecretKey string
	Client               *minio.Client
}

// Binary returns the weed binary to run, or skips (or fails) t.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("ALLOT_WEED"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("ALLOT_WEED=%s: %v", p, err)
		}
		return p
	}
	if p, err := exec.LookPath("weed"); err == nil {
		return p
	}
	msg := "NO S3-COMPATIBLE SERVER: the S3 sink is NOT tested. Run scripts/test (it builds SeaweedFS's weed " +
		"from the module proxy), or set ALLOT_WEED to a weed binary (go build ./weed in github.com/seaweedfs/seaweedfs@" + Version + ")"
	if os.Getenv("ALLOT_S3_TESTS") == "on" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freePorts returns n distinct free TCP ports on loopback (every port weed
// opens is given, so that servers of tests running side by side do not
// collide on its defaults).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// logBuffer keeps the server's output for a failing test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() < 1<<20 {
		l.b.Write(p)
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs a SeaweedFS server with an S3 gateway and waits until it
// answers; the test's cleanup stops it and waits for it to exit.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	s := &Server{AccessKey: "allot-test", SecretKey: "allot-test-secret-key"}
	cfg := fmt.Sprintf(`{"identities":[{"name":"allot","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`,
		s.AccessKey, s.SecretKey)
	cfgPath := filepath.Join(dir, "s3.json")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := freePorts(t, 8)
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"server", "-dir=" + data, "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		"-master.port=" + strconv.Itoa(p[0]), "-master.port.grpc=" + strconv.Itoa(p[1]),
		"-volume.port=" + strconv.Itoa(p[2]), "-volume.port.grpc=" + strconv.Itoa(p[3]),
		"-filer.port=" + strconv.Itoa(p[4]), "-filer.port.grpc=" + strconv.Itoa(p[5]),
		"-s3", "-s3.port=" + strconv.Itoa(p[6]), "-s3.port.grpc=" + strconv.Itoa(p[7]), "-s3.config=" + cfgPath,
		"-master.volumeSizeLimitMB=64", "-volume.max=8", "-master.telemetry=false"}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	var out logBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("weed output:\n%s", out.String())
		}
	})
	s.Endpoint = "http://127.0.0.1:" + strconv.Itoa(p[6])
	client, err := minio.New("127.0.0.1:"+strconv.Itoa(p[6]), &minio.Options{
		Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		t.Fatal(err)
	}
	s.Client = client
	// Ready when it lists buckets (the S3 gateway waits for the filer,
	// which waits for the master and a volume server).
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("weed exited before it was ready: %v\n%s", err, out.String())
		default:
		}
		c, stop := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := client.ListBuckets(c)
		stop()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("weed's S3 gateway not ready after 90 s: %v\n%s", err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	return s
}

// Bucket makes a bucket and returns its name.
func (s *Server) Bucket(t testing.TB, name string) string {
	t.Helper()
	// A new server may take a moment before a volume takes writes: retry.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.Client.MakeBucket(context.Background(), name, minio.MakeBucketOptions{})
		if err == nil {
			return name
		}
		if time.Now().After(deadline) {
			t.Fatalf("make bucket %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Env sets the standard AWS credential variables for the test.
func (s *Server) Env(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
}

// Objects returns every object under prefix of bucket: key to content.
func (s *Server) Objects(t testing.TB, bucket, prefix string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	for o := range s.Client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			t.Fatalf("list %s/%s: %v", bucket, prefix, o.Err)
		}
		obj, err := s.Client.GetObject(ctx, bucket, o.Key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(obj)
		obj.Close()
		if err != nil {
			t.Fatalf("get %s: %v", o.Key, err)
		}
		out[strings.TrimPrefix(o.Key, prefix)] = b
	}
	return out
}
