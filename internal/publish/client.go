package publish

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/allot-dev/allot/internal/core"
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

// buildClient serializes the CLIENT (obfuscated) form of doc, built from
// the same compiled document as the SERVER form, so both always describe
// one revision.
func buildClient(doc *ufc.Document) (Representation, error) {
	body, err := json.Marshal(ufc.Obfuscate(doc))
	if err != nil {
		return Representation{}, err
	}
	return newRepresentation(body, "c-")
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
	h := core.HashSecret(secret)
	st := c.cur.Load()
	e := st.clients[h]
	if e == nil {
		return nil, nil
	}
	for i := range e.p.clientKeys {
		if subtle.ConstantTimeCompare(e.p.clientKeys[i].Hash[:], h[:]) == 1 {
			if u := st.used[h]; u != nil {
				if m := time.Now().Unix() / 60 * 60; u.Load() != m {
					u.Store(m)
				}
			}
			return e.p, e.p.clientKeys[i].Origins
		}
	}
	return nil, nil
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
