package publish

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/internal/eval"
)

// Published is one environment's compiled configuration, immutable once
// built.
type Published struct {
	Environment string
	Revision    int64
	Snapshot    *eval.Snapshot // the document as SDKs evaluate it
	Body        []byte         // the JSON document; nil while none can be served
	Gzip        []byte         // Body, gzip-compressed
	ETag        string         // strong ETag of Body (quoted)
	GzipETag    string         // strong ETag of Gzip (quoted)
	Flags       int
	keyHashes   [][32]byte

	createdAt time.Time
	frags     []*fragment // sorted by key
	blocks    []*block
	refused   map[string]*refusal
	// client builds the CLIENT (obfuscated) form once, on first use
	// (client.go: Client).
	client     func() (Representation, error)
	clientKeys []core.ClientKey
	// keysRev is the environment revision of the read whose keys
	// (keyHashes, clientKeys) are installed: a full read older than it
	// must not bring back a key revoked since.
	keysRev int64
}

// Build compiles cfg, checks that the engine loads every flag of the result,
// and compresses it. Unlike a Cache, it refuses the whole environment when
// one flag is refused.
func Build(cfg core.EnvironmentConfig) (*Published, error) {
	cfg.Flags = core.PublishedFlags(slices.Clone(cfg.Flags))
	frags := make([]*fragment, 0, len(cfg.Flags))
	for i := range cfg.Flags {
		f, err := compileFragment(&cfg.Flags[i])
		if err != nil {
			return nil, fmt.Errorf("flag %s: %w", cfg.Flags[i].Flag.Key, err)
		}
		frags = append(frags, f)
	}
	slices.SortFunc(frags, func(a, b *fragment) int { return strings.Compare(a.key, b.key) })
	var a assembler
	p, err := a.assemble(cfg.Environment.Name, cfg.Environment.UpdatedAt, frags, nil)
	if err != nil {
		return nil, err
	}
	p.Revision = cfg.Environment.Revision
	p.keyHashes = cfg.KeyHashes
	p.clientKeys = cfg.ClientKeys
	p.keysRev = cfg.Environment.Revision
	p.client = lazyClient(cfg.Environment.Name, p.Body)
	return p, nil
}

type state struct {
	envs map[string]*Published
	keys map[[32]byte]*Published
	// used holds, per live key, the minute (Unix seconds) it last fetched
	// a configuration; FlushUse writes it to the database.
	used map[[32]byte]*atomic.Int64
	// clients are the live client keys (client.go).
	clients map[[32]byte]*clientEntry
}

// Defaults of the Cache's limits.
const (
	DefaultQueryTimeout = 5 * time.Second
	DefaultMaxAge       = 30 * time.Second
)

// Cache holds every environment's Published configuration. Lookups are
// lock-free. Changes reach it two ways: Changed, called after each commit
// on this replica, recompiles the flags named; Refresh, called by Run on
// every poll, rereads each environment whose revision moved (changes made
// through other replicas) and recompiles only the flags whose versions
// moved. Neither holds a lock across database I/O: reads run in parallel,
// and only the installation of the result (CPU work proportional to the
// environment's size in bytes, with a small constant) is serialized.
type Cache struct {
	db *store.DB
	// read is the domain core's read side: what an environment holds is
	// the core's to say; the cache only compiles and serves it.
	read *core.Core
	log  *slog.Logger
	// OnBuild, if set before use, is called after each build attempt.
	OnBuild func(env string, took time.Duration, err error)
	// OnRefused, if set before use, is called after each build of env with
	// the number of flags refused in it and how many of those were refused
	// for the first time.
	OnRefused func(env string, refused, added int)
	// QueryTimeout bounds each database call of a refresh; default
	// DefaultQueryTimeout. Set before use.
	QueryTimeout time.Duration
	// MaxAge is how old the configuration may grow (since a refresh last
	// confirmed it against the database) before Ready reports it; default
	// DefaultMaxAge. Set before use.
	MaxAge time.Duration
	// Now is the clock; time.Now if nil. Set before use.
	Now func() time.Time

	cur atomic.Pointer[state]
	// mu serializes installs. It is never held across database I/O.
	mu  sync.Mutex
	seq uint64 // install sequence, under mu
	asm assembler

	lastErr atomic.Pointer[error]
	loaded  atomic.Bool
	lastOK  atomic.Int64 // Unix nanoseconds: start of the last successful refresh

	flushMu sync.Mutex
	flushed map[[32]byte]int64 // the last use written, per key

	subs hub // change subscribers (subscribe.go)
}

// NewCache returns an empty cache over db; call Refresh to fill it.
func NewCache(db *store.DB, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{db: db, read: core.New(db, core.Options{}), log: log, flushed: map[[32]byte]int64{}}
	c.cur.Store(&state{envs: map[string]*Published{}, keys: map[[32]byte]*Published{}, used: map[[32]byte]*atomic.Int64{}})
	return c
}

func (c *Cache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// withTimeout gives one database call its deadline.
func (c *Cache) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	d := c.QueryTimeout
	if d <= 0 {
		d = DefaultQueryTimeout
	}
	return context.WithTimeout(ctx, d)
}

// Environment returns the published configuration of env, or nil.
func (c *Cache) Environment(env string) *Published { return c.cur.Load().envs[env] }

// ForKey returns the configuration an SDK key reads, or nil if the key is
// unknown or revoked. The key's hash is looked up, then compared in
// constant time. A configuration whose Body is nil has nothing to serve
// yet (its environment has flags but none could be published).
func (c *Cache) ForKey(secret string) *Published {
	h := core.HashSecret(secret)
	st := c.cur.Load()
	p := st.keys[h]
	if p == nil {
		return nil
	}
	for i := range p.keyHashes {
		if subtle.ConstantTimeCompare(p.keyHashes[i][:], h[:]) == 1 {
			if u := st.used[h]; u != nil {
				if m := time.Now().Unix() / 60 * 60; u.Load() != m {
					u.Store(m)
				}
			}
			return p
		}
	}
	return nil
}

// FlushUse writes to the database when each SDK key last fetched a
// configuration, to the minute, for the keys used since the last flush.
func (c *Cache) FlushUse(ctx context.Context) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	uses := map[[32]byte]time.Time{}
	for h, u := range c.cur.Load().used {
		if m := u.Load(); m != 0 && m != c.flushed[h] {
			uses[h] = time.Unix(m, 0)
		}
	}
	if len(uses) == 0 {
		return nil
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if err := c.db.RecordSDKKeyUse(ctx, uses); err != nil {
		return err
	}
	for h, at := range uses {
		c.flushed[h] = at.Unix()
	}
	return nil
}

// Age is how long ago a refresh last confirmed the configuration against
// the database (from the start of that refresh), or -1 before the first.
func (c *Cache) Age() time.Duration {
	ok := c.lastOK.Load()
	if ok == 0 {
		return -1
	}
	return c.now().Sub(time.Unix(0, ok))
}

// Ready returns nil once every environment has compiled, as long as a
// refresh confirmed the configuration against the database less than
// MaxAge ago. Otherwise the error says why (and what the last refresh
// failed with). A refused flag does not make a replica unready: every
// replica refuses the same flag, so routing around it helps no one;
// Problems reports it.
func (c *Cache) Ready() error {
	var last error
	if p := c.lastErr.Load(); p != nil {
		last = *p
	}
	if !c.loaded.Load() {
		if last != nil {
			return fmt.Errorf("configuration not compiled yet: %w", last)
		}
		return errors.New("configuration not compiled yet")
	}
	limit := c.MaxAge
	if limit <= 0 {
		limit = DefaultMaxAge
	}
	if age := c.Age(); age > limit {
		if last == nil {
			last = errors.New("no refresh since")
		}
		return fmt.Errorf("configuration is %s old (limit %s); last refresh: %w", age.Round(time.Second), limit, last)
	}
	return nil
}

// Problems lists, sorted, each flag publishing refused, as
// "environment/flag: reason", and each environment that has flags but
// nothing it could publish.
func (c *Cache) Problems() []string {
	var out []string
	for name, p := range c.cur.Load().envs {
		for key, r := range p.refused {
			out = append(out, fmt.Sprintf("%s/%s: refused: %v", name, key, r.err))
		}
		if p.Body == nil {
			out = append(out, fmt.Sprintf("%s: not published: every flag is refused", name))
		}
	}
	sort.Strings(out)
	return out
}

// Refresh rebuilds the environments whose revision changed since they were
// last built, recompiling only the flags whose versions changed. It reads
// one small table when nothing changed. Each database call has a deadline
// (QueryTimeout).
func (c *Cache) Refresh(ctx context.Context) error {
	start := c.now()
	err := c.refresh(ctx)
	c.lastErr.Store(&err)
	if err == nil {
		c.loaded.Store(true)
		for {
			old := c.lastOK.Load()
			if old >= start.UnixNano() || c.lastOK.CompareAndSwap(old, start.UnixNano()) {
				break
			}
		}
	}
	return err
}

func (c *Cache) refresh(ctx context.Context) error {
	lctx, cancel := c.withTimeout(ctx)
	envs, err := c.read.Environments(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("publish: list environments: %w", err)
	}
	old := c.cur.Load()
	var errs []error
	for _, e := range envs {
		if p := old.envs[e.Name]; p != nil && p.Revision == e.Revision {
			continue
		}
		if err := c.rebuild(ctx, e.Name, nil); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Changed republishes after a commit on this replica: env's flags named in
// flags (env "" for every environment; no flags to reread the whole
// environment, for changes such as SDK keys). It reads only those flags
// and recompiles only them, so its cost does not grow with the number of
// flags beyond copying the document. Errors are logged; the next poll
// (Run) rereads any environment whose revision this replica has not seen.
func (c *Cache) Changed(env string, flags []string) {
	ctx := context.Background()
	envs := []string{env}
	if env == "" {
		lctx, cancel := c.withTimeout(ctx)
		list, err := c.read.Environments(lctx)
		cancel()
		if err != nil {
			c.log.Error("republishing after a change failed; the next poll retries", "err", err)
			return
		}
		envs = envs[:0]
		for _, e := range list {
			envs = append(envs, e.Name)
		}
	}
	for _, e := range envs {
		if err := c.rebuild(ctx, e, flags); err != nil {
			c.log.Error("republishing after a change failed; the next poll retries", "environment", e, "flags", flags, "err", err)
		}
	}
}

// read is what one rebuild read from the database.
type read struct {
	env  core.Environment
	full bool // every flag of the environment was read
	keys [][32]byte
	// clients are the environment's live client keys (full reads).
	clients []core.ClientKey
	flags   []core.FlagConfig
	gone    []string // flags asked for that do not exist (partial reads)
	seq     uint64   // the install sequence when the read began
}

// candidate is one flag as a rebuild compiled it: a fragment, or why not.
type candidate struct {
	key  string
	frag *fragment
	ref  *refusal
}

func (c *Cache) rebuild(ctx context.Context, env string, flags []string) error {
	start := time.Now()
	p, err := c.rebuildEnv(ctx, env, flags)
	if c.OnBuild != nil {
		c.OnBuild(env, time.Since(start), err)
	}
	if err != nil {
		return err
	}
	c.log.Debug("configuration built", "environment", env, "revision", p.Revision, "flags", p.Flags, "bytes", len(p.Body), "took", time.Since(start))
	return nil
}

func (c *Cache) rebuildEnv(ctx context.Context, env string, flags []string) (*Published, error) {
	c.mu.Lock()
	r := read{seq: c.seq}
	c.mu.Unlock()
	prev := c.cur.Load().envs[env]
	if prev == nil || prev.Body == nil {
		// Nothing published to patch: a partial read would publish a
		// document holding only the flags named.
		flags = nil
	}
	rctx, cancel := c.withTimeout(ctx)
	defer cancel()
	var kept []candidate // flags whose compiled form is current (full reads)
	switch {
	case len(flags) > 0:
		// The environment first: a change landing during the reads below
		// moves its revision past the one read here, so a poll rereads it.
		e, err := c.read.Environment(rctx, env)
		if err != nil {
			return nil, fmt.Errorf("publish: read environment %s: %w", env, err)
		}
		r.env = e
		if r.flags, r.gone, err = c.readFlags(rctx, env, flags); err != nil {
			return nil, err
		}
	case prev != nil && prev.Body != nil:
		// Versions first: only the flags whose versions moved are read
		// and decoded, unless so many moved that one query is cheaper.
		e, versions, keys, clients, err := c.db.EnvironmentVersions(rctx, env)
		if err != nil {
			return nil, fmt.Errorf("publish: read environment %s: %w", env, err)
		}
		var stale []string
		for _, v := range versions {
			created := v.CreatedAt.UnixMicro()
			if ref := prev.refusal(v.Key); ref != nil && ref.created == created && ref.flagVer == v.Version && ref.setsVer == v.SettingsVersion {
				kept = append(kept, candidate{key: v.Key, ref: ref})
			} else if f := prev.fragment(v.Key); f != nil && f.created == created && f.flagVer == v.Version && f.setsVer == v.SettingsVersion {
				kept = append(kept, candidate{key: v.Key, frag: f})
			} else {
				stale = append(stale, v.Key)
			}
		}
		if len(stale) <= maxPatch {
			r.env, r.full, r.keys, r.clients = e, true, keys, clients
			// A flag deleted since the versions were read is left out of
			// the candidates, so install removes it.
			if r.flags, _, err = c.readFlags(rctx, env, stale); err != nil {
				return nil, err
			}
			break
		}
		kept = nil
		fallthrough
	default:
		cfg, err := c.read.EnvironmentConfig(rctx, env)
		if err != nil {
			return nil, fmt.Errorf("publish: read environment %s: %w", env, err)
		}
		r.env, r.full, r.keys, r.clients, r.flags = cfg.Environment, true, cfg.KeyHashes, cfg.ClientKeys, cfg.Flags
	}
	cancel()
	r.flags = core.PublishedFlags(r.flags)

	// Compile what changed, outside the lock.
	cands := make([]candidate, len(r.flags), len(r.flags)+len(kept))
	for i := range r.flags {
		fc := &r.flags[i]
		cand := candidate{key: fc.Flag.Key}
		created := fc.Flag.CreatedAt.UnixMicro()
		if old := prev.fragment(cand.key); old != nil && old.created == created && old.flagVer == fc.Flag.Version && old.setsVer == fc.Settings.Version {
			cand.frag = old
		} else if ref := prev.refusal(cand.key); ref != nil && ref.created == created && ref.flagVer == fc.Flag.Version && ref.setsVer == fc.Settings.Version {
			cand.ref = ref
		} else if f, err := compileFragment(fc); err != nil {
			cand.ref = &refusal{created: created, flagVer: fc.Flag.Version, setsVer: fc.Settings.Version, err: err}
		} else {
			cand.frag = f
		}
		cands[i] = cand
	}
	return c.install(&r, append(cands, kept...))
}

// maxPatch is how many changed flags a poll reads one by one; beyond it, it
// reads the whole environment in one query.
const maxPatch = 256

// readFlags reads flags (definition and settings in env) one by one; gone
// lists those that no longer exist.
func (c *Cache) readFlags(ctx context.Context, env string, keys []string) (flags []core.FlagConfig, gone []string, err error) {
	for _, key := range keys {
		def, err := c.read.Flag(ctx, key)
		if core.ErrorCode(err) == core.ENOTFOUND {
			gone = append(gone, key)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("publish: read flag %s: %w", key, err)
		}
		if !def.Published() {
			gone = append(gone, key) // archived: out of the document
			continue
		}
		set, err := c.read.FlagSettings(ctx, env, key)
		if core.ErrorCode(err) == core.ENOTFOUND {
			gone = append(gone, key)
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("publish: read flag %s in %s: %w", key, env, err)
		}
		flags = append(flags, core.FlagConfig{Flag: def, Settings: set})
	}
	return flags, gone, nil
}

// FlagJSON returns the compiled UFC JSON of one flag as SDKs receive it,
// or nil if the document does not hold it. It costs a binary search, not a
// parse of the document. The bytes are shared: do not modify them.
func (p *Published) FlagJSON(key string) []byte {
	if f := p.fragment(key); f != nil {
		return f.member[f.valueAt:]
	}
	return nil
}

// fragment returns the fragment of key, or nil.
func (p *Published) fragment(key string) *fragment {
	if p == nil {
		return nil
	}
	i, ok := slices.BinarySearchFunc(p.frags, key, func(f *fragment, k string) int { return strings.Compare(f.key, k) })
	if !ok {
		return nil
	}
	return p.frags[i]
}

func (p *Published) refusal(key string) *refusal {
	if p == nil {
		return nil
	}
	return p.refused[key]
}

// install merges what a rebuild read and compiled into the environment's
// published set and publishes the result. Reads run concurrently, so a
// read may be older than what another rebuild installed since it began:
// a flag's fragment is replaced only by one built from versions at least
// as recent, and a flag missing from a read is removed only if its
// fragment was installed before the read began. When a read cannot be
// trusted whole, the revision is left behind so that the next poll rereads
// the environment.
func (c *Cache) install(r *read, cands []candidate) (*Published, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	seq := c.seq
	st := c.cur.Load()
	env := r.env.Name
	prev := st.envs[env]

	changes := map[string]*fragment{} // key → its new fragment, or nil to remove it
	refused := map[string]*refusal{}
	var prevFrags []*fragment
	revision := int64(0)
	var keys [][32]byte
	var clients []core.ClientKey
	var keysRev int64
	createdAt := r.env.UpdatedAt
	if prev != nil {
		prevFrags, revision, keys, clients, keysRev = prev.frags, prev.Revision, prev.keyHashes, prev.clientKeys, prev.keysRev
		for k, v := range prev.refused {
			refused[k] = v
		}
		if prev.createdAt.After(createdAt) {
			createdAt = prev.createdAt
		}
	}
	trusted := true
	remove := func(key string) {
		if f := prev.fragment(key); f != nil {
			if f.seq > r.seq {
				trusted = false // installed after this read began: keep it
				return
			}
			changes[key] = nil
		}
		delete(refused, key)
	}
	if r.full {
		if prev == nil || r.env.Revision >= keysRev {
			keys, clients, keysRev = r.keys, r.clients, r.env.Revision
		} else {
			// A read that began before the one whose keys are installed
			// (a poll racing Changed): its keys may include one revoked
			// since. Keep the newer keys, and the revision, for a poll.
			trusted = false
		}
		seen := make(map[string]bool, len(cands))
		for _, cd := range cands {
			seen[cd.key] = true
		}
		for _, f := range prevFrags {
			if !seen[f.key] {
				remove(f.key)
			}
		}
		for k := range refused {
			if !seen[k] {
				delete(refused, k)
			}
		}
	}
	for _, k := range r.gone {
		remove(k)
	}
	added := 0
	for _, cd := range cands {
		old := prev.fragment(cd.key)
		if cd.frag != nil {
			if cd.frag == old {
				delete(refused, cd.key)
				continue
			}
			if old != nil && !old.olderThan(cd.frag.created, cd.frag.flagVer, cd.frag.setsVer) {
				trusted = false // a newer read was installed meanwhile
				continue
			}
			cd.frag.seq = seq
			changes[cd.key] = cd.frag
			delete(refused, cd.key)
			continue
		}
		ref := cd.ref
		if old != nil && !old.olderThan(ref.created, ref.flagVer, ref.setsVer) {
			trusted = false
			continue
		}
		if was := refused[cd.key]; was != ref {
			added++
			c.log.Error("publishing refused a flag", "environment", env, "flag", cd.key, "flag_version", ref.flagVer, "settings_version", ref.setsVer, "err", ref.err)
		}
		refused[cd.key] = ref
		if old != nil && old.created != ref.created {
			changes[cd.key] = nil // another incarnation of the flag: no last good form
		}
		// Otherwise the flag keeps serving its last good form.
	}

	frags := mergeFragments(prevFrags, changes)
	if r.full && trusted {
		revision = r.env.Revision
	}
	var p *Published
	switch {
	case len(frags) == 0 && len(refused) > 0:
		// Never publish an empty document for an environment that has
		// flags: keep serving the previous document, or nothing.
		c.log.Error("publishing refused every flag of an environment; keeping its previous configuration", "environment", env, "refused", len(refused))
		if prev != nil && prev.Body != nil {
			np := *prev
			p = &np
		} else {
			p = &Published{Environment: env, Snapshot: eval.Assemble(env, createdAt, nil), createdAt: createdAt}
		}
	default:
		var err error
		if p, err = c.asm.assemble(env, createdAt, frags, prev); err != nil {
			return nil, err
		}
	}
	p.Revision, p.keyHashes, p.clientKeys, p.keysRev, p.refused = revision, keys, clients, keysRev, refused
	if p.Body != nil {
		p.client = lazyClient(env, p.Body)
	}
	if len(refused) == 0 {
		p.refused = nil
	}

	next := &state{envs: make(map[string]*Published, len(st.envs)+1), keys: make(map[[32]byte]*Published), used: make(map[[32]byte]*atomic.Int64)}
	for name, q := range st.envs {
		next.envs[name] = q
	}
	next.envs[env] = p
	for _, q := range next.envs {
		for _, h := range q.keyHashes {
			next.keys[h] = q
			if next.used[h] = st.used[h]; next.used[h] == nil {
				next.used[h] = new(atomic.Int64)
			}
		}
	}
	indexClientKeys(next, st)
	c.cur.Store(next)
	c.published(st, next)
	if c.OnRefused != nil {
		c.OnRefused(env, len(refused), added)
	}
	return p, nil
}

// mergeFragments applies changes (key → new fragment, nil to remove) to
// frags, keeping the result sorted by key: linear in len(frags) plus the
// sort of the flags added.
func mergeFragments(frags []*fragment, changes map[string]*fragment) []*fragment {
	if len(changes) == 0 {
		return frags
	}
	var adds []*fragment
	for k, f := range changes {
		if f != nil {
			if _, ok := slices.BinarySearchFunc(frags, k, func(f *fragment, k string) int { return strings.Compare(f.key, k) }); !ok {
				adds = append(adds, f)
			}
		}
	}
	slices.SortFunc(adds, func(a, b *fragment) int { return strings.Compare(a.key, b.key) })
	out := make([]*fragment, 0, len(frags)+len(adds))
	for _, f := range frags {
		for len(adds) > 0 && adds[0].key < f.key {
			out = append(out, adds[0])
			adds = adds[1:]
		}
		if nf, ok := changes[f.key]; ok {
			if nf != nil {
				out = append(out, nf)
			}
			continue
		}
		out = append(out, f)
	}
	return append(out, adds...)
}

// Run refreshes every interval until ctx ends, so changes made through
// another replica sharing the database show up here.
func (c *Cache) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			if err := c.FlushUse(fctx); err != nil {
				c.log.Warn("recording SDK key use failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("configuration refresh failed", "err", err, "age", c.Age().Round(time.Millisecond))
			}
			if err := c.FlushUse(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("recording SDK key use failed", "err", err)
			}
		}
	}
}
