package allot

import (
	"context"
	"hash/maphash"
	"maps"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/allot-dev/allot/internal/eval"
)

// AssignmentLogger receives an event for each assignment, to store it
// where experiment analysis can read it (the "assignment table").
// LogAssignment is called from one goroutine of the client, never from the
// assignment path; a slow logger delays only later events (which are
// dropped when the queue fills), and a panic is recovered and counted.
type AssignmentLogger interface {
	LogAssignment(AssignmentEvent)
}

// AssignmentLoggerFunc adapts a function to AssignmentLogger.
type AssignmentLoggerFunc func(AssignmentEvent)

// LogAssignment calls f(e).
func (f AssignmentLoggerFunc) LogAssignment(e AssignmentEvent) { f(e) }

// AssignmentEvent records that a subject was assigned a variation (UFC spec
// section 5). The JSON field names are those of Eppo's SDKs.
type AssignmentEvent struct {
	// EventID is a random UUID given to each event, so that a store can
	// drop repeats (the HTTP logger's retries, say).
	EventID     string `json:"eventId"`
	FeatureFlag string `json:"featureFlag"`
	Allocation  string `json:"allocation"`
	// Experiment is FeatureFlag + "-" + Allocation.
	Experiment string `json:"experiment"`
	// Variation is the variation's key, not its value.
	Variation string `json:"variation"`
	Subject   string `json:"subject"`
	// SubjectAttributes are the attributes the caller passed (a copy).
	SubjectAttributes Attributes `json:"subjectAttributes,omitempty"`
	// Timestamp is the time of the assignment, in UTC.
	Timestamp time.Time `json:"timestamp"`
	// ExtraLogging holds the matched split's extra logging fields.
	ExtraLogging map[string]string `json:"extraLogging,omitempty"`
	// MetaData identifies the SDK: sdkLanguage and sdkVersion.
	MetaData map[string]string `json:"metaData"`
}

// queued is what the assignment path puts on the queue: fixed-size, with
// pointers into the immutable snapshot; the event is built by the logging
// goroutine. flush is set only on flush markers.
type queued struct {
	flag, subject string
	attrs         Attributes
	alloc         *eval.Allocation
	split         *eval.Split
	at            time.Time
	slot          uint64
	fp            uint64
	flush         chan struct{}
}

// eventProcessor owns event delivery. The assignment path calls record,
// which consults the lock-free filter and does a non-blocking send; one
// goroutine (run) owns the LRU and calls the logger.
type eventProcessor struct {
	logger   AssignmentLogger
	log      func(msg string, args ...any)
	queue    chan queued
	stop     chan struct{}
	done     chan struct{}
	filter   *dedupFilter // nil when dedup is disabled
	lru      *lru
	warned   atomic.Bool
	stopping atomic.Bool

	logged, dropped, deduped, panics atomic.Uint64
}

func newEventProcessor(cfg Config) *eventProcessor {
	p := &eventProcessor{
		logger: cfg.AssignmentLogger,
		log:    cfg.Logger.Warn,
		queue:  make(chan queued, cfg.EventQueueSize),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if !cfg.DisableDedup {
		p.filter = newDedupFilter(cfg.DedupCacheSize)
		p.lru = newLRU(cfg.DedupCacheSize)
	}
	return p
}

// enqueue queues an assignment event that the filter did not know (the
// caller checks the filter first, inline). It never blocks: a full queue
// drops the event. now is the evaluation's time, or zero if it did not
// read the clock.
func (p *eventProcessor) enqueue(flag, subject string, attrs Attributes, a *eval.Allocation, sp *eval.Split, slot, fp uint64, now time.Time, clock func() time.Time) {
	if p.stopping.Load() {
		return
	}
	if now.IsZero() {
		now = clock()
	}
	if len(attrs) > 0 {
		// The caller may change its map once we return.
		attrs = maps.Clone(attrs)
	}
	select {
	case p.queue <- queued{flag: flag, subject: subject, attrs: attrs, alloc: a, split: sp, at: now, slot: slot, fp: fp}:
	default:
		p.dropped.Add(1)
		if p.warned.CompareAndSwap(false, true) {
			p.log("allot: the assignment event queue is full; dropping events (see Config.EventQueueSize and Status().EventsDropped)")
		}
	}
}

// flush waits until every event queued before it has been handled.
func (p *eventProcessor) flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case p.queue <- queued{flush: done}:
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close delivers what is queued and stops the goroutine, or gives up
// waiting when ctx ends (the goroutine then stops after the logger call
// in progress returns).
func (p *eventProcessor) close(ctx context.Context) error {
	p.stopping.Store(true)
	close(p.stop)
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *eventProcessor) run() {
	defer close(p.done)
	for {
		select {
		case q := <-p.queue:
			p.handle(q)
		case <-p.stop:
			for {
				select {
				case q := <-p.queue:
					p.handle(q)
				default:
					return
				}
			}
		}
	}
}

func (p *eventProcessor) handle(q queued) {
	if q.flush != nil {
		close(q.flush)
		return
	}
	if p.lru != nil {
		k := dedupKey{q.flag, q.subject}
		v := dedupValue{q.alloc.Key, q.split.VariationKey}
		if e, ok := p.lru.get(k); ok && e.value == v {
			p.deduped.Add(1)
			if e.slot != q.slot || e.fp != q.fp {
				// A new snapshot: the filter entry moves with the LRU's, so
				// that evicting the pair from the LRU clears it.
				p.filter.forget(e.slot, e.fp)
				e.slot, e.fp = q.slot, q.fp
			}
			p.filter.remember(q.slot, q.fp)
			return
		} else if ok {
			// The pair changed (A → B): the fingerprint of A must stop
			// suppressing A, or a change back to A would not be logged.
			p.filter.forget(e.slot, e.fp)
		}
		if !p.deliver(q) {
			return
		}
		if old, evicted := p.lru.put(k, v, q.slot, q.fp); evicted {
			p.filter.forget(old.slot, old.fp)
		}
		p.filter.remember(q.slot, q.fp)
		return
	}
	p.deliver(q)
}

// deliver builds the event and calls the logger, recovering a panic.
func (p *eventProcessor) deliver(q queued) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			p.panics.Add(1)
			p.log("allot: the assignment logger panicked", "panic", r, "flag", q.flag)
			ok = false
		}
	}()
	e := AssignmentEvent{
		EventID:           newEventID(),
		FeatureFlag:       q.flag,
		Allocation:        q.alloc.Key,
		Experiment:        q.flag + "-" + q.alloc.Key,
		Variation:         q.split.VariationKey,
		Subject:           q.subject,
		SubjectAttributes: q.attrs,
		Timestamp:         q.at.UTC(),
		MetaData:          map[string]string{"sdkLanguage": "go", "sdkName": SDKName, "sdkVersion": Version},
	}
	if len(q.split.ExtraLogging) > 0 {
		e.ExtraLogging = maps.Clone(q.split.ExtraLogging)
	}
	p.logger.LogAssignment(e)
	p.logged.Add(1)
	return true
}

// dedupFilter is a direct-mapped table of fingerprints of recently logged
// (flag, subject, allocation, variation) tuples, read by the assignment
// path without locks or allocation. Only the logging goroutine writes it,
// after the authoritative LRU has decided, so a hit means "logged and not
// changed since"; a miss just sends the event to the LRU for a decision.
type dedupFilter struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Uint64
}

func newDedupFilter(size int) *dedupFilter {
	n := 2
	for n < 2*size {
		n <<= 1
	}
	return &dedupFilter{seed: maphash.MakeSeed(), mask: uint64(n - 1), slots: make([]atomic.Uint64, n)}
}

// key returns the slot of (flag, subject) and the fingerprint of the
// tuple (never 0, which marks an empty slot). To stay cheap it hashes only
// the subject key and takes the flag and the split (which stands for the
// allocation and the variation) by address, with the snapshot's
// generation so that an address reused by a later snapshot cannot match.
// A new snapshot therefore misses once per (flag, subject); the LRU, which
// compares the keys themselves, then decides and refills the slot.
func (f *dedupFilter) key(subject string, flag *eval.Flag, split *eval.Split, gen uint64) (slot, fp uint64) {
	k := maphash.String(f.seed, subject) ^ uint64(uintptr(unsafe.Pointer(flag)))*0x9e3779b97f4a7c15
	fp = mix(k^(uint64(uintptr(unsafe.Pointer(split)))+gen)*0xc2b2ae3d27d4eb4f) | 1
	return (k ^ k>>31) & f.mask, fp
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

// The table is two-way associative: a pair of adjacent slots (one cache
// line) holds up to two tuples whose keys collide.
func (f *dedupFilter) seen(slot, fp uint64) bool {
	return f.slots[slot].Load() == fp || f.slots[slot^1].Load() == fp
}

func (f *dedupFilter) remember(slot, fp uint64) {
	a, b := &f.slots[slot], &f.slots[slot^1]
	switch va, vb := a.Load(), b.Load(); {
	case va == fp || vb == fp:
	case va == 0:
		a.Store(fp)
	case vb == 0:
		b.Store(fp)
	case fp&2 == 0:
		a.Store(fp)
	default:
		b.Store(fp)
	}
}

func (f *dedupFilter) forget(slot, fp uint64) {
	f.slots[slot].CompareAndSwap(fp, 0)
	f.slots[slot^1].CompareAndSwap(fp, 0)
}

type dedupKey struct{ flag, subject string }

type dedupValue struct{ alloc, variation string }

// lru is a least-recently-used map from (flag, subject) to the last logged
// (allocation, variation), owned by the logging goroutine.
type lru struct {
	cap        int
	items      map[dedupKey]*lruEntry
	head, tail *lruEntry // head is the most recent
}

type lruEntry struct {
	key        dedupKey
	value      dedupValue
	slot, fp   uint64
	prev, next *lruEntry
}

func newLRU(capacity int) *lru {
	return &lru{cap: capacity, items: make(map[dedupKey]*lruEntry)}
}

func (l *lru) get(k dedupKey) (*lruEntry, bool) {
	e, ok := l.items[k]
	if ok {
		l.moveToFront(e)
	}
	return e, ok
}

// put stores k → v and returns the entry evicted to make room, if any.
func (l *lru) put(k dedupKey, v dedupValue, slot, fp uint64) (evicted lruEntry, ok bool) {
	if e, found := l.items[k]; found {
		e.value, e.slot, e.fp = v, slot, fp
		l.moveToFront(e)
		return lruEntry{}, false
	}
	var e *lruEntry
	if len(l.items) >= l.cap && l.tail != nil {
		e = l.tail
		evicted, ok = *e, true
		l.unlink(e)
		delete(l.items, e.key)
		*e = lruEntry{}
	} else {
		e = &lruEntry{}
	}
	e.key, e.value, e.slot, e.fp = k, v, slot, fp
	l.items[k] = e
	l.pushFront(e)
	return evicted, ok
}

func (l *lru) moveToFront(e *lruEntry) {
	if l.head == e {
		return
	}
	l.unlink(e)
	l.pushFront(e)
}

func (l *lru) unlink(e *lruEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *lru) pushFront(e *lruEntry) {
	e.next = l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}
