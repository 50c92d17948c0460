package allot

import (
	"hash/maphash"
	"sync/atomic"
)

// dedupCache remembers which (flag, subject) pairs were logged with which
// (allocation, variation), so that a repeat is not logged again. It is
// built for churn (many subjects seen once): a fixed table of 8-byte
// fingerprints in sets of eight (one cache line), read and written by the
// assignment path with atomic loads and stores, no lock and no allocation.
// A new pair replaces a random member of its set, so the cost of an
// insert does not grow with the number of subjects, unlike an LRU map
// that probes, deletes and relinks.
//
// An entry is the pair's 32-bit tag (from the hash of flag and subject)
// above 32 bits of the hash of flag, subject, allocation and variation.
// A pair whose variation changes matches the tag but not the value: its
// entry is overwritten and the assignment logged, so a change A → B → A
// logs three times. The odds that a change goes unnoticed are those of a
// 32-bit hash collision (one in four billion changes); that a new pair is
// taken for a logged one, those of a 64-bit collision within its set.
type dedupCache struct {
	seed maphash.Seed
	mask uint64 // number of sets - 1
	sets []dedupSet
}

const dedupWays = 8

type dedupSet [dedupWays]atomic.Uint64

// dedupEntryBytes is the memory of one remembered pair.
const dedupEntryBytes = 8

// newDedupCache makes a cache for at least size pairs (a power of two
// number of sets).
func newDedupCache(size int) *dedupCache {
	n := 1
	for n*dedupWays < size {
		n <<= 1
	}
	return &dedupCache{seed: maphash.MakeSeed(), mask: uint64(n - 1), sets: make([]dedupSet, n)}
}

// keyHash hashes (flag, subject). It also picks the hand-off shard, so it
// is computed even when dedup is off.
func keyHash(seed maphash.Seed, flag, subject string) uint64 {
	return maphash.String(seed, subject) ^ mix(maphash.String(seed, flag))
}

// entry returns the entry of (key, allocation, variation).
func (d *dedupCache) entry(kh uint64, alloc, variation string) uint64 {
	vh := mix(kh ^ maphash.String(d.seed, alloc)*0x9e3779b97f4a7c15 ^ maphash.String(d.seed, variation))
	return (mix(kh)|1)<<32 | vh&0xffffffff
}

// seen reports whether the entry is in the cache, and if not stores it,
// replacing its pair's older entry or, failing that, a random one of its
// set. The stored entry stays if the event is then dropped; forget it
// then, so that the next assignment retries.
func (d *dedupCache) seen(kh, e uint64) bool {
	set := &d.sets[kh&d.mask]
	tag := e >> 32
	victim := -1
	for i := range set {
		v := set[i].Load()
		if v == e {
			return true
		}
		if v>>32 == tag {
			victim = i // the pair, logged with another variation
		} else if v == 0 && victim < 0 {
			victim = i
		}
	}
	if victim < 0 {
		victim = int(e>>29) & (dedupWays - 1)
	}
	set[victim].Store(e)
	return false
}

// forget removes an entry that seen stored.
func (d *dedupCache) forget(kh, e uint64) {
	set := &d.sets[kh&d.mask]
	for i := range set {
		set[i].CompareAndSwap(e, 0)
	}
}

// mix is a 64-bit finalizer (from MurmurHash3).
func mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
