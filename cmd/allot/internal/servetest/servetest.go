// Package servetest runs the allot binary as a real process, for the tests
// that kill it mid-stream: the CLI's and the end-to-end ones.
package servetest

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// Build compiles the allot command (the main package in dir, relative to
// the test's directory) into a temporary directory and returns its path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "allot")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// Process is a running `allot serve`.
type Process struct {
	Cmd *exec.Cmd
	URL string // http://127.0.0.1:port
}

// Serve runs `allot serve --addr ADDR args...` on a free loopback port with
// ALLOT_ADMIN_TOKEN=token and waits until it is ready. The test's cleanup
// kills it if it still runs, and prints its log if the test failed.
func Serve(t testing.TB, bin, token string, args ...string) *Process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), "ALLOT_ADMIN_TOKEN="+token)
	var logs bytes.Buffer // written by exec's copier until Wait returns
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("allot serve %s:\n%s", strings.Join(args, " "), logs.String())
		}
	})
	p := &Process{Cmd: cmd, URL: "http://" + addr}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("allot serve did not become ready: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReadSealed reads every sealed Parquet file under dir. Files of a seal in
// progress (or killed) have temporary names and are skipped, as readers are
// told to; a file a recovery removes while this looks is skipped too.
func ReadSealed(t testing.TB, dir string) []table.Row {
	t.Helper()
	var all []table.Row
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".parquet") {
			return err
		}
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		rs, err := table.ReadParquet(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		all = append(all, rs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return all
}
