//go:build linux

package server_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

// A SQLite database on a full file system: /readyz is not ready and says
// why, and admin writes are 503 with Retry-After, not 500. It mounts a
// small tmpfs, so it runs only as root (CI containers, this machine).
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	// The free-space check off (-1): the write probe alone must notice.
	s := start(t, server.Config{DB: filepath.Join(dir, "allot.db"), AdminToken: adminToken, MinFreeDisk: -1})
	if status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil); status != 200 {
		t.Fatalf("before: %d %s", status, body)
	}
	// Fill the file system.
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{1}, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	// A flag big enough that its write cannot fit in what pages SQLite may
	// still have: four values just under the per-value limit (docs/limits.md).
	var vs []string
	for _, k := range []string{"a", "b", "c", "d"} {
		vs = append(vs, `{"key":"`+k+`","value":"`+strings.Repeat(k, 60000)+`"}`)
	}
	big := `{"key":"big","variationType":"STRING","description":"` + strings.Repeat("d", 500) + `","variations":[` + strings.Join(vs, ",") + `]}`
	status, hdr, body := do(t, nil, "POST", s.URL()+"/api/v1/flags", "Bearer "+adminToken, strings.NewReader(big))
	if status != 503 || hdr.Get("Retry-After") == "" {
		t.Errorf("write on a full disk: %d Retry-After %q %.300s", status, hdr.Get("Retry-After"), body)
	}
	status, _, body = do(t, nil, "GET", s.URL()+"/readyz", "", nil)
	t.Logf("readyz on a full disk: %d %q", status, body)
	if status != 503 || !strings.Contains(body, "disk: ") {
		t.Errorf("readyz on a full disk: %d %q", status, body)
	}
	// Room again: ready again, and the write goes through.
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	if status, _, body := do(t, nil, "GET", s.URL()+"/readyz", "", nil); status != 200 {
		t.Errorf("after freeing space: %d %q", status, body)
	}
	if status, _, body := do(t, nil, "POST", s.URL()+"/api/v1/flags", "Bearer "+adminToken, strings.NewReader(big)); status != 201 {
		t.Errorf("write after freeing space: %d %.300s", status, body)
	}
}
