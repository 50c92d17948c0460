// Package sdkseam lets allottest push configurations into a Go SDK client
// through the client's data-source seam without adding to the SDK's public
// API: package allot fills in Attach when it is initialised, and allottest,
// being in the same module, may import this internal package.
package sdkseam

import (
	"errors"
	"sync"
)

// ErrDetached is returned by Push when no client is attached to the feed,
// or its client has been closed.
var ErrDetached = errors.New("allot: the feed is not attached to a running client")

// Attach makes feed a data source of client (an *allot.Client): from then
// until the client is closed, Push installs documents in it. It is set by
// package allot at init.
var Attach func(client any, feed *Feed) error

// Feed carries documents from a test double to one client.
type Feed struct {
	mu      sync.Mutex
	install func(doc []byte) error
}

// Push installs doc in the attached client through its install path and
// returns the engine's verdict.
func (f *Feed) Push(doc []byte) error {
	f.mu.Lock()
	install := f.install
	f.mu.Unlock()
	if install == nil {
		return ErrDetached
	}
	return install(doc)
}

// Connect is called by the client's push source: install receives the
// pushed documents until Connect(nil).
func (f *Feed) Connect(install func(doc []byte) error) {
	f.mu.Lock()
	f.install = install
	f.mu.Unlock()
}
