package allot

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"unsafe"
)

// Event ids are UUID-shaped strings (version 8, RFC 9562's "custom"
// layout): the first 64 bits are random, drawn once per process from
// crypto/rand, and the last 62 bits are a process-wide counter that starts
// at a random value. Two processes collide only if they draw the same
// 60-bit prefix, so ids stay unique across a fleet, while making one costs
// an atomic add and a hex encoding instead of a crypto/rand read.
var (
	idPrefix  [19]byte // "xxxxxxxx-xxxx-8xxx-"
	idCounter atomic.Uint64
)

func init() {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x80
	hex.Encode(idPrefix[0:8], b[0:4])
	idPrefix[8] = '-'
	hex.Encode(idPrefix[9:13], b[4:6])
	idPrefix[13] = '-'
	hex.Encode(idPrefix[14:18], b[6:8])
	idPrefix[18] = '-'
	idCounter.Store(binary.LittleEndian.Uint64(b[8:]) >> 34)
}

const eventIDLen = 36

// appendEventID appends a new event id to dst.
func appendEventID(dst []byte) []byte {
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], idCounter.Add(1))
	c[0] = c[0]&0x3f | 0x80 // the RFC 9562 variant
	var s [17]byte
	hex.Encode(s[0:4], c[0:2])
	s[4] = '-'
	hex.Encode(s[5:], c[2:])
	dst = append(dst, idPrefix[:]...)
	return append(dst, s[:]...)
}

// newEventID returns a new event id as a string of its own.
func newEventID() string {
	return string(appendEventID(make([]byte, 0, eventIDLen)))
}

// idSlab hands out event ids carved from a shared buffer, so that a batch
// of events costs one allocation rather than one per event. It belongs to
// one goroutine. An id keeps its slab alive; a slab is a few kilobytes.
type idSlab struct{ buf []byte }

const idsPerSlab = 128

func (s *idSlab) next() string {
	if cap(s.buf)-len(s.buf) < eventIDLen {
		s.buf = make([]byte, 0, eventIDLen*idsPerSlab)
	}
	start := len(s.buf)
	s.buf = appendEventID(s.buf)
	b := s.buf[start:len(s.buf):len(s.buf)]
	return unsafeString(b)
}

// unsafeString views b as a string; b must never change afterwards (the
// slab only appends past it).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
