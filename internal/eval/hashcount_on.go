//go:build allot_hashcount

package eval

import "sync/atomic"

// hashCount counts MD5 digests in the allot_hashcount build (go test
// -tags allot_hashcount), so that a test can state exactly how many an
// evaluation computes.
var hashCount atomic.Int64

func countHash() { hashCount.Add(1) }
