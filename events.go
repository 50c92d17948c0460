package allot

import (
	"context"
	"hash/maphash"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/internal/eval"
)

// AssignmentLogger receives an event for each assignment, to store it
// where experiment analysis can read it (the "assignment table").
// LogAssignment is called from one goroutine of the client, never from the
// assignment path; a slow logger delays only later events (which are
// dropped when the buffer fills), and a panic is recovered and counted.
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
	// EventID is unique to each event (a UUID-shaped string: a random
	// per-process prefix and a counter), so that a store can drop repeats
	// (the HTTP logger's retries, say).
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
	// MetaData identifies the SDK: sdkLanguage, sdkName and sdkVersion.
	// The client's events share one map: read it, do not change it.
	MetaData map[string]string `json:"metaData"`
}

// sdkMetaData is every client event's MetaData (shared, never changed).
var sdkMetaData = map[string]string{"sdkLanguage": "go", "sdkName": SDKName, "sdkVersion": Version}

// The hand-off from the assignment path to the logging goroutine.
//
// Policy: nothing is dropped while the process can keep up, and the
// caller never waits for I/O. An event that the dedup cache does not know
// is appended to a batch of its shard (chosen by the hash of flag and
// subject, so concurrent callers rarely share a lock, which is held for an
// append). A full batch goes to the logging goroutine with one channel
// send for batchLen events. Batches come from a free list, so in the steady
// state an event costs no allocation; the buffer grows batch by batch, up
// to Config.EventQueueSize events, only during a burst. When the logging
// goroutine falls behind by more than half the buffer (it is runnable but
// the callers hold every processor), the caller handing off a batch yields
// its processor once (runtime.Gosched), and past three quarters up to
// eight times, which lets it catch up without blocking anyone. Only when the buffer is full is an event dropped: it
// is counted in Status().EventsDropped, reported to Config.OnEventsDropped
// and logged as a warning once per dropReportInterval while drops go on.
const (
	batchLen           = 256
	flushTick          = 100 * time.Millisecond
	dropReportInterval = 10 * time.Second
)

// record is an assignment on its way to the logger: fixed-size, with
// pointers into the immutable snapshot; the attributes are copied into
// the batch's slab.
type record struct {
	flag, subject  string
	alloc          *eval.Allocation
	split          *eval.Split
	at             time.Time
	attrLo, attrHi int32
}

type attrKV struct {
	key   string
	value any
}

type batch struct {
	recs  []record
	attrs []attrKV
}

func (b *batch) attributes(r *record) []attrKV { return b.attrs[r.attrLo:r.attrHi] }

type shard struct {
	mu  sync.Mutex
	cur *batch
	_   [48]byte // one shard per cache line
}

// eventProcessor owns event delivery. The assignment path calls record;
// one goroutine (run) builds events and calls the logger.
type eventProcessor struct {
	logger AssignmentLogger
	fast   recordLogger // the logger, when it encodes records itself
	// releaseFunc is p.release, made once.
	releaseFunc func(*batch)
	log         func(msg string, args ...any)
	onDrop      func(uint64)
	seed        maphash.Seed
	dedup       *dedupCache // nil when dedup is disabled
	shards      []shard
	mask        uint64
	full        chan *batch // batches for the logging goroutine
	free        chan *batch
	batches     atomic.Int64 // batches allocated
	max         int64        // most batches
	flushes     chan chan struct{}
	stop        chan struct{}
	done        chan struct{}
	stopping    atomic.Bool
	// assisting counts callers in assist, holding batches that are
	// neither in full nor with the logger yet.
	assisting atomic.Int64
	assists   atomic.Uint64 // assists done (for tests)

	logged, dropped, deduped, panics atomic.Uint64

	// Owned by the logging goroutine.
	ids         idSlab
	experiments map[*eval.Allocation]string
	reported    uint64 // drops already reported
	lastReport  time.Time
}

// recordLogger is implemented by loggers of this package (HTTPLogger) that
// encode events straight from the records, without building an
// AssignmentEvent, its maps, or its id string. logRecords takes the batch
// and calls release when done with it (from any goroutine); it may wait
// while its own buffer is full.
type recordLogger interface {
	logRecords(b *batch, release func(*batch))
	// assist encodes batches on the caller's goroutine and releases them,
	// or returns false at once if it cannot take them now.
	assist(bs []*batch, release func(*batch)) bool
}

func newEventProcessor(cfg Config) *eventProcessor {
	n := 1
	for n < 4*runtime.GOMAXPROCS(0) {
		n <<= 1
	}
	max := int64((cfg.EventQueueSize + batchLen - 1) / batchLen)
	p := &eventProcessor{
		logger:      cfg.AssignmentLogger,
		log:         cfg.Logger.Warn,
		onDrop:      cfg.OnEventsDropped,
		seed:        maphash.MakeSeed(),
		shards:      make([]shard, n),
		mask:        uint64(n - 1),
		full:        make(chan *batch, max),
		free:        make(chan *batch, max),
		max:         max,
		flushes:     make(chan chan struct{}),
		stop:        make(chan struct{}),
		done:        make(chan struct{}),
		experiments: make(map[*eval.Allocation]string),
	}
	p.fast, _ = cfg.AssignmentLogger.(recordLogger)
	p.releaseFunc = p.release
	if !cfg.DisableDedup {
		p.dedup = newDedupCache(cfg.DedupCacheSize)
		p.seed = p.dedup.seed
	}
	return p
}

// record hands an assignment to the logging goroutine unless it was logged
// already. It never blocks: when the buffer is full the event is dropped
// and counted. now is the evaluation's time, or zero if it did not read
// the clock.
func (p *eventProcessor) record(flag, subject string, attrs Attributes, a *eval.Allocation, sp *eval.Split, now time.Time, clock func() time.Time) {
	kh := keyHash(p.seed, flag, subject)
	var e uint64
	if p.dedup != nil {
		e = p.dedup.entry(kh, a.Key, sp.VariationKey)
		if p.dedup.seen(kh, e) {
			return
		}
	}
	if p.stopping.Load() {
		return
	}
	if now.IsZero() {
		now = clock()
	}
	sh := &p.shards[(kh>>40)&p.mask]
	sh.mu.Lock()
	b := sh.cur
	if b == nil {
		if b = p.newBatch(); b == nil {
			sh.mu.Unlock()
			if p.dedup != nil {
				p.dedup.forget(kh, e)
			}
			p.dropped.Add(1)
			return
		}
		sh.cur = b
	}
	lo := len(b.attrs)
	for k, v := range attrs {
		b.attrs = append(b.attrs, attrKV{k, v})
	}
	b.recs = append(b.recs, record{flag: flag, subject: subject, alloc: a, split: sp, at: now, attrLo: int32(lo), attrHi: int32(len(b.attrs))})
	if len(b.recs) < batchLen {
		sh.mu.Unlock()
		return
	}
	sh.cur = nil
	sh.mu.Unlock()
	p.full <- b // never blocks: the channel holds every batch there is
	// Batches in use: waiting here, or still with a recordLogger. Past
	// half the buffer, yield once; past three quarters, up to eight
	// times, as long as that much is in use (each yield returns at once
	// when nothing else is runnable, so this never waits for the logger).
	for i := 0; i < 8 && p.inUse() > p.max/2; i++ {
		runtime.Gosched()
		if p.inUse() <= p.max*3/4 {
			return
		}
	}
	if p.fast != nil && p.inUse() > p.max*3/4 {
		p.assist()
	}
}

// assist is the assignment path's share of the work while the buffer is
// more than three quarters full (as a goroutine that allocates helps the
// garbage collector): the caller encodes a few waiting batches for the
// logger itself, CPU work without any wait, so that callers that produce
// events faster than the logging goroutines can take them slow down in
// proportion instead of filling the buffer.
func (p *eventProcessor) assist() {
	p.assisting.Add(1)
	defer p.assisting.Add(-1)
	var bs [assistBatches]*batch
	n := 0
	for n < len(bs) {
		select {
		case bs[n] = <-p.full:
			n++
			continue
		default:
		}
		break
	}
	if n == 0 {
		return
	}
	events := 0
	for _, b := range bs[:n] {
		events += len(b.recs)
	}
	if !p.fast.assist(bs[:n], p.releaseFunc) {
		for _, b := range bs[:n] {
			p.full <- b // never blocks: the channel holds every batch there is
		}
		return
	}
	p.logged.Add(uint64(events)) // (the batches are released by now)
	p.assists.Add(1)
}

// assistBatches is how many batches one assist encodes (about 0.3 ms).
const assistBatches = 4

// inUse is how many batches hold events: being filled, waiting for the
// logging goroutine, or with a recordLogger.
func (p *eventProcessor) inUse() int64 { return p.batches.Load() - int64(len(p.free)) }

// newBatch takes a free batch, or makes one while the buffer may grow.
func (p *eventProcessor) newBatch() *batch {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.batches.Add(1) > p.max {
		p.batches.Add(-1)
		return nil
	}
	return &batch{recs: make([]record, 0, batchLen), attrs: make([]attrKV, 0, batchLen)}
}

func (p *eventProcessor) release(b *batch) {
	clear(b.recs) // drop the references to subjects and snapshots
	clear(b.attrs)
	b.recs, b.attrs = b.recs[:0], b.attrs[:0]
	p.free <- b // never blocks, as above
}

// flush waits until every event recorded before it has been handled.
func (p *eventProcessor) flush(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case p.flushes <- done:
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

// close delivers what is buffered and stops the goroutine, or gives up
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
	tick := time.NewTicker(flushTick)
	defer tick.Stop()
	for {
		select {
		case b := <-p.full:
			p.handle(b)
		case <-tick.C:
			p.drainPartial()
			p.reportDrops(time.Now())
		case done := <-p.flushes:
			p.drain()
			close(done)
		case <-p.stop:
			p.drain()
			p.reportDrops(time.Time{})
			return
		}
	}
}

// drain handles every batch, full or not.
func (p *eventProcessor) drain() {
	for p.assisting.Load() > 0 {
		runtime.Gosched() // an assist is short and never waits
	}
	for {
		select {
		case b := <-p.full:
			p.handle(b)
		default:
			p.drainPartial()
			return
		}
	}
}

// drainPartial takes the shards' batches in progress, so that an event
// waits at most flushTick for its batch to fill.
func (p *eventProcessor) drainPartial() {
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		b := sh.cur
		sh.cur = nil
		sh.mu.Unlock()
		if b != nil {
			p.handle(b)
		}
	}
}

// reportDrops warns, at most once per dropReportInterval, while events are
// being dropped, and tells Config.OnEventsDropped how many. A zero now
// reports at once (on close).
func (p *eventProcessor) reportDrops(now time.Time) {
	d := p.dropped.Load()
	if d == p.reported || (!now.IsZero() && now.Sub(p.lastReport) < dropReportInterval) {
		return
	}
	n := d - p.reported
	p.reported, p.lastReport = d, now
	p.log("allot: assignment events dropped: the logger cannot keep up (see Config.EventQueueSize)",
		"dropped", n, "droppedTotal", d)
	if p.onDrop != nil {
		func() {
			defer func() { _ = recover() }()
			p.onDrop(n)
		}()
	}
}

func (p *eventProcessor) handle(b *batch) {
	switch {
	case len(b.recs) == 0:
	case p.fast != nil:
		// The logger releases the batch (a field, so that handing it
		// over allocates no closure).
		p.logged.Add(uint64(len(b.recs)))
		p.fast.logRecords(b, p.releaseFunc)
		return
	default:
		for i := range b.recs {
			p.deliver(b, &b.recs[i])
		}
	}
	p.release(b)
}

// deliver builds the event and calls the logger, recovering a panic.
func (p *eventProcessor) deliver(b *batch, r *record) {
	defer func() {
		if v := recover(); v != nil {
			p.panics.Add(1)
			p.log("allot: the assignment logger panicked", "panic", v, "flag", r.flag)
			if p.dedup != nil {
				// Not logged: the next assignment tries again.
				kh := keyHash(p.seed, r.flag, r.subject)
				p.dedup.forget(kh, p.dedup.entry(kh, r.alloc.Key, r.split.VariationKey))
			}
		}
	}()
	e := AssignmentEvent{
		EventID:     p.ids.next(),
		FeatureFlag: r.flag,
		Allocation:  r.alloc.Key,
		Experiment:  p.experiment(r.flag, r.alloc),
		Variation:   r.split.VariationKey,
		Subject:     r.subject,
		Timestamp:   r.at.UTC(),
		MetaData:    sdkMetaData,
	}
	if kv := b.attributes(r); len(kv) > 0 {
		e.SubjectAttributes = make(Attributes, len(kv))
		for _, a := range kv {
			e.SubjectAttributes[a.key] = a.value
		}
	}
	if len(r.split.ExtraLogging) > 0 {
		e.ExtraLogging = maps.Clone(r.split.ExtraLogging)
	}
	p.logger.LogAssignment(e)
	p.logged.Add(1)
}

// experiment returns flag + "-" + allocation, made once per allocation of
// a snapshot.
func (p *eventProcessor) experiment(flag string, a *eval.Allocation) string {
	if s, ok := p.experiments[a]; ok {
		return s
	}
	if len(p.experiments) >= 4096 {
		clear(p.experiments) // old snapshots' allocations
	}
	s := flag + "-" + a.Key
	p.experiments[a] = s
	return s
}
