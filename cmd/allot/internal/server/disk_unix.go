//go:build unix

package server

import (
	"errors"
	"syscall"
)

var errNoStatfs = errors.New("free space is not known on this system")

// freeBytes returns the bytes an unprivileged user may still write in dir's
// file system.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
