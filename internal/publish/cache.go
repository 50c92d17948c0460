package publish

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/internal/core"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/store"
)

// Published is one environment's compiled configuration, immutable once
// built.
type Published struct {
	Environment string
	Revision    int64
	Snapshot    *eval.Snapshot // the document as SDKs evaluate it
	Body        []byte         // the JSON document
	Gzip        []byte         // Body, gzip-compressed
	ETag        string         // strong ETag of Body (quoted)
	GzipETag    string         // strong ETag of Gzip (quoted)
	Flags       int
	keyHashes   [][32]byte
	// client builds the CLIENT (obfuscated) form once, on first use
	// (client.go: Client).
	client     func() (Representation, error)
	clientKeys []core.ClientKey
}

// Build compiles cfg, checks that the engine loads the result with no flag
// errors, and compresses it.
func Build(cfg store.EnvironmentConfig) (*Published, error) {
	doc, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	snap, err := eval.Load(body)
	if err != nil {
		return nil, fmt.Errorf("compiled document does not load: %w", err)
	}
	var flagErr error
	snap.Flags(func(f *eval.Flag) bool {
		if f.Err != nil {
			flagErr = fmt.Errorf("compiled flag %s does not load: %w", f.Key, f.Err)
			return false
		}
		return true
	})
	if flagErr != nil {
		return nil, flagErr
	}
	var zbuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestCompression)
	zw.Write(body)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:12])
	return &Published{
		client:      lazyClient(doc),
		clientKeys:  cfg.ClientKeys,
		Environment: cfg.Environment.Name,
		Revision:    cfg.Environment.Revision,
		Snapshot:    snap,
		Body:        body,
		Gzip:        zbuf.Bytes(),
		ETag:        `"` + tag + `"`,
		GzipETag:    `"` + tag + `-gz"`,
		Flags:       len(doc.Flags),
		keyHashes:   cfg.KeyHashes,
	}, nil
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

// Cache holds every environment's Published configuration and rebuilds one
// when its revision in the database moves. Lookups are lock-free.
type Cache struct {
	db  *store.DB
	log *slog.Logger
	// OnBuild, if set before use, is called after each build attempt.
	OnBuild func(env string, took time.Duration, err error)

	cur     atomic.Pointer[state]
	mu      sync.Mutex // serializes refreshes
	lastErr atomic.Pointer[error]
	loaded  atomic.Bool

	flushMu sync.Mutex
	flushed map[[32]byte]int64 // the last use written, per key
}

// NewCache returns an empty cache over db; call Refresh to fill it.
func NewCache(db *store.DB, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{db: db, log: log, flushed: map[[32]byte]int64{}}
	c.cur.Store(&state{envs: map[string]*Published{}, keys: map[[32]byte]*Published{}, used: map[[32]byte]*atomic.Int64{}})
	return c
}

// Environment returns the published configuration of env, or nil.
func (c *Cache) Environment(env string) *Published { return c.cur.Load().envs[env] }

// ForKey returns the configuration an SDK key reads, or nil if the key is
// unknown or revoked. The key's hash is looked up, then compared in
// constant time.
func (c *Cache) ForKey(secret string) *Published {
	h := store.HashSecret(secret)
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
	if err := c.db.RecordSDKKeyUse(ctx, uses); err != nil {
		return err
	}
	for h, at := range uses {
		c.flushed[h] = at.Unix()
	}
	return nil
}

// Ready returns nil once every environment has compiled and the last
// refresh succeeded.
func (c *Cache) Ready() error {
	if !c.loaded.Load() {
		return errors.New("configuration not compiled yet")
	}
	if p := c.lastErr.Load(); p != nil && *p != nil {
		return *p
	}
	return nil
}

// Refresh rebuilds the environments whose revision changed since they were
// last built. It reads one small table when nothing changed.
func (c *Cache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.refresh(ctx)
	c.lastErr.Store(&err)
	if err == nil {
		c.loaded.Store(true)
	}
	return err
}

func (c *Cache) refresh(ctx context.Context) error {
	envs, err := c.db.Environments(ctx)
	if err != nil {
		return fmt.Errorf("publish: list environments: %w", err)
	}
	old := c.cur.Load()
	next := &state{envs: make(map[string]*Published, len(envs))}
	changed := false
	var errs []error
	for _, e := range envs {
		p := old.envs[e.Name]
		if p == nil || p.Revision != e.Revision {
			start := time.Now()
			np, err := c.build(ctx, e.Name)
			if c.OnBuild != nil {
				c.OnBuild(e.Name, time.Since(start), err)
			}
			if err != nil {
				c.log.Error("building configuration failed; serving the previous one", "environment", e.Name, "err", err)
				errs = append(errs, err)
			} else {
				c.log.Info("configuration built", "environment", e.Name, "revision", np.Revision, "flags", np.Flags, "bytes", len(np.Body), "took", time.Since(start))
				p, changed = np, true
			}
		}
		if p != nil {
			next.envs[e.Name] = p
		}
	}
	if len(next.envs) != len(old.envs) {
		changed = true
	}
	if changed {
		next.keys = make(map[[32]byte]*Published)
		next.used = make(map[[32]byte]*atomic.Int64)
		for _, p := range next.envs {
			for _, h := range p.keyHashes {
				next.keys[h] = p
				if next.used[h] = old.used[h]; next.used[h] == nil {
					next.used[h] = new(atomic.Int64)
				}
			}
		}
		indexClientKeys(next, old)
		c.cur.Store(next)
	}
	return errors.Join(errs...)
}

func (c *Cache) build(ctx context.Context, env string) (*Published, error) {
	cfg, err := c.db.EnvironmentConfig(ctx, env)
	if err != nil {
		return nil, err
	}
	return Build(cfg)
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
				c.log.Warn("configuration refresh failed", "err", err)
			}
			if err := c.FlushUse(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("recording SDK key use failed", "err", err)
			}
		}
	}
}
