//go:build !unix

package server

import "errors"

var errNoStatfs = errors.New("free space is not known on this system")

func freeBytes(string) (uint64, error) { return 0, errNoStatfs }
