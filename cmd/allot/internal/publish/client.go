package publish

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

// Representation is one serialized form of an environment's document, ready
// to serve from memory: the JSON, its gzip and their strong ETags.
type Representation struct {
	Body     []byte
	Gzip     []byte
	ETag     string // quoted
	GzipETag string // quoted
}

// newRepresentation compresses body and tags both forms; prefix keeps the
// tags of the SERVER and CLIENT forms apart even for an empty environment.
func newRepresentation(body []byte, prefix string) (Representation, error) {
	var zbuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestCompression)
	zw.Write(body)
	if err := zw.Close(); err != nil {
		return Representation{}, err
	}
	sum := sha256.Sum256(body)
	tag := prefix + hex.EncodeToString(sum[:12])
	return Representation{Body: body, Gzip: zbuf.Bytes(), ETag: `"` + tag + `"`, GzipETag: `"` + tag + `-gz"`}, nil
}

// lazyClient returns a function that builds the CLIENT (obfuscated) form of
// doc on its first call and returns the same result to every later one. It
// is built from the same compiled document as the SERVER form, so both
// describe one revision; it is built lazily because it costs as much as the
// SERVER form again (marshalling and compressing), which an environment no
// client SDK reads should not pay on every change.
func lazyClient(env string, server []byte) func() (Representation, error) {
	return sync.OnceValues(func() (Representation, error) {
		doc, err := ufc.Parse(server)
		if err != nil {
			return Representation{}, fmt.Errorf("CLIENT form of %s: read the SERVER form: %w", env, err)
		}
		body, err := json.Marshal(ufc.Obfuscate(doc))
		if err != nil {
			return Representation{}, fmt.Errorf("CLIENT form of %s: %w", env, err)
		}
		return newRepresentation(body, "c-")
	})
}

// Client returns the CLIENT (obfuscated) form of p, for client keys and
// Eppo's client SDKs, built on first use and then served from memory.
func (p *Published) Client() (Representation, error) {
	if p.client == nil { // nothing published for the environment yet
		return Representation{}, fmt.Errorf("CLIENT form of %s: no configuration is published", p.Environment)
	}
	return p.client()
}

// clientEntry is a live client key in the cache's lookup table.
type clientEntry struct {
	p       *Published
	origins []string
}

// ForClientKey returns the configuration a client key reads and the
// origins it may be used from (empty: any), or nil if the secret is not a
// live client key. Server keys are not client keys: ForKey finds those.
func (c *Cache) ForClientKey(secret string) (*Published, []string) {
	p, client, origins := c.Lookup(secret)
	if !client {
		return nil, nil
	}
	return p, origins
}

// Lookup finds a live SDK key of either kind, hashing the secret once:
// the configuration it reads (nil if none), whether it is a client key,
// and a client key's allowed origins (empty: any). Hashes are looked up,
// then compared in constant time.
func (c *Cache) Lookup(secret string) (p *Published, client bool, origins []string) {
	h := core.HashSecret(secret)
	st := c.cur.Load()
	if p := st.keys[h]; p != nil {
		for i := range p.keyHashes {
			if subtle.ConstantTimeCompare(p.keyHashes[i][:], h[:]) == 1 {
				st.markUsed(h)
				return p, false, nil
			}
		}
		return nil, false, nil
	}
	e := st.clients[h]
	if e == nil {
		return nil, false, nil
	}
	for i := range e.p.clientKeys {
		if subtle.ConstantTimeCompare(e.p.clientKeys[i].Hash[:], h[:]) == 1 {
			st.markUsed(h)
			return e.p, true, e.p.clientKeys[i].Origins
		}
	}
	return nil, false, nil
}

// markUsed records, to the minute, that a key fetched a configuration.
func (st *state) markUsed(h [32]byte) {
	if u := st.used[h]; u != nil {
		if m := time.Now().Unix() / 60 * 60; u.Load() != m {
			u.Store(m)
		}
	}
}

// indexClientKeys adds the client keys of every environment in next to its
// lookup table, carrying over their use records.
func indexClientKeys(next, old *state) {
	next.clients = make(map[[32]byte]*clientEntry)
	for _, p := range next.envs {
		for _, k := range p.clientKeys {
			next.clients[k.Hash] = &clientEntry{p: p, origins: k.Origins}
			if next.used[k.Hash] = old.used[k.Hash]; next.used[k.Hash] == nil {
				next.used[k.Hash] = new(atomic.Int64)
			}
		}
	}
}
