package publish

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc32"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// The document is assembled from the fragments of its flags (sorted by
// key, as encoding/json orders a map, so the bytes equal json.Marshal of
// the whole document) and gzipped in blocks of consecutive flags. Each
// block is compressed with a sync flush, which leaves the deflate stream
// byte-aligned, so compressed blocks concatenate into one valid stream.
// Each block is compressed with the bytes of the block before it as preset
// dictionary (they are what precedes it in the stream, so a decoder has
// them in its window), which keeps the ratio close to that of compressing
// the whole document at once. A change therefore recompresses the flag's
// block and the one after; the rest of the work (copying bytes, one CRC-32
// over the body) is linear with a small constant.
//
// Block boundaries depend on the flag keys only (a block ends after a key
// whose hash is 0 modulo blockSpread, or at blockMax flags), so creating or
// deleting a flag changes one block, not every block after it.
const (
	blockSpread = 32
	blockMax    = 256
)

// block is a run of consecutive fragments and its compressed bytes.
type block struct {
	frags []*fragment
	comma bool // the block starts with "," (it is not the first)
	z     []byte
	sum   [sha256.Size]byte // SHA-256 of the block's uncompressed bytes
	// pred holds the fragments of the block before this one when z was
	// compressed: z is only valid after those bytes (its dictionary).
	pred       []*fragment
	start, end int // the block's bytes in the body
}

// assembler holds the compressor reused between builds; one per Cache,
// used under Cache.mu.
type assembler struct {
	zw  *flate.Writer
	buf bytes.Buffer
}

func (a *assembler) deflate(parts ...[]byte) []byte {
	a.buf.Reset()
	if a.zw == nil {
		a.zw, _ = flate.NewWriter(&a.buf, flate.BestCompression)
	} else {
		a.zw.Reset(&a.buf)
	}
	for _, p := range parts {
		a.zw.Write(p)
	}
	a.zw.Flush()
	return bytes.Clone(a.buf.Bytes())
}

// compress fills in b's compressed bytes and digest, with dict (the bytes
// before it in the body, at most 32 KiB) as preset dictionary.
func (a *assembler) compress(b *block, dict []byte) {
	a.buf.Reset()
	var zw *flate.Writer
	if len(dict) == 0 {
		if a.zw == nil {
			a.zw, _ = flate.NewWriter(&a.buf, flate.BestCompression)
		} else {
			a.zw.Reset(&a.buf)
		}
		zw = a.zw
	} else {
		zw, _ = flate.NewWriterDict(&a.buf, flate.BestCompression, dict)
	}
	h := sha256.New()
	for i, f := range b.frags {
		if i > 0 || b.comma {
			zw.Write(comma)
			h.Write(comma)
		}
		zw.Write(f.member)
		h.Write(f.member)
	}
	zw.Flush()
	b.z = bytes.Clone(a.buf.Bytes())
	h.Sum(b.sum[:0])
}

var comma = []byte{','}

// gzipHeader is a gzip member header: deflate, no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// finalBlock is an empty final deflate block (fixed Huffman, end of block).
var finalBlock = []byte{0x03, 0x00}

func keyHash(key string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return h
}

// splitBlocks cuts frags into blocks, reusing the compressed bytes of every
// block of prev that holds exactly the same fragments after the same
// predecessor.
func splitBlocks(frags []*fragment, prev []*block) []*block {
	old := make(map[*fragment]*block, len(prev))
	for _, b := range prev {
		old[b.frags[0]] = b
	}
	var out []*block
	start := 0
	for i, f := range frags {
		if i+1 < len(frags) && keyHash(f.key)%blockSpread != 0 && i+1-start < blockMax {
			continue
		}
		b := &block{frags: frags[start : i+1 : i+1], comma: start > 0}
		if len(out) > 0 {
			b.pred = out[len(out)-1].frags
		}
		if p := old[b.frags[0]]; p != nil && p.comma == b.comma && samePointers(p.frags, b.frags) && samePointers(p.pred, b.pred) {
			b.z, b.sum = p.z, p.sum
		}
		out = append(out, b)
		start = i + 1
	}
	return out
}

func samePointers(a, b []*fragment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// assemble builds the published form of an environment from its fragments
// (sorted by key), reusing what it can of prev.
func (a *assembler) assemble(env string, createdAt time.Time, frags []*fragment, prev *Published) (*Published, error) {
	head, tail, err := documentEnds(env, createdAt)
	if err != nil {
		return nil, err
	}
	var prevBlocks []*block
	if prev != nil {
		prevBlocks = prev.blocks
	}
	blocks := splitBlocks(frags, prevBlocks)

	size := len(head) + len(tail)
	for i, f := range frags {
		size += len(f.member)
		if i > 0 {
			size++
		}
	}
	body := make([]byte, 0, size)
	body = append(body, head...)
	for _, b := range blocks {
		b.start = len(body)
		for i, f := range b.frags {
			if i > 0 || b.comma {
				body = append(body, ',')
			}
			body = append(body, f.member...)
		}
		b.end = len(body)
	}
	body = append(body, tail...)

	zhead, ztail := a.deflate(head), a.deflate(tail)
	zsize := len(gzipHeader) + len(zhead) + len(ztail) + len(finalBlock) + 8
	// The ETag hashes the blocks' digests rather than the body, so that
	// only new blocks are hashed: it is as strong, and as deterministic
	// across replicas, since block boundaries depend on the flag keys only.
	etag := sha256.New()
	etag.Write(head)
	for i, b := range blocks {
		if b.z == nil {
			var dict []byte
			if i > 0 {
				dict = body[max(blocks[i-1].start, b.start-32<<10):b.start]
			}
			a.compress(b, dict)
		}
		zsize += len(b.z)
		etag.Write(b.sum[:])
	}
	etag.Write(tail)
	gz := make([]byte, 0, zsize)
	gz = append(gz, gzipHeader...)
	gz = append(gz, zhead...)
	for _, b := range blocks {
		gz = append(gz, b.z...)
	}
	gz = append(gz, ztail...)
	gz = append(gz, finalBlock...)
	gz = binary.LittleEndian.AppendUint32(gz, crc32.ChecksumIEEE(body))
	gz = binary.LittleEndian.AppendUint32(gz, uint32(len(body)))

	flags := make([]*eval.Flag, len(frags))
	for i, f := range frags {
		flags[i] = f.flag
	}
	tag := hex.EncodeToString(etag.Sum(nil)[:12])
	return &Published{
		Environment: env,
		Snapshot:    eval.Assemble(env, createdAt, flags),
		Body:        body,
		Gzip:        gz,
		ETag:        `"` + tag + `"`,
		GzipETag:    `"` + tag + `-gz"`,
		Flags:       len(frags),
		createdAt:   createdAt,
		frags:       frags,
		blocks:      blocks,
	}, nil
}

// documentEnds returns the document's bytes before and after the members
// of its "flags" object, as json.Marshal writes them.
func documentEnds(env string, createdAt time.Time) (head, tail []byte, err error) {
	doc, err := json.Marshal(&ufc.Document{
		CreatedAt:        createdAt.UTC().Format(time.RFC3339Nano),
		Format:           ufc.FormatServer,
		Environment:      ufc.Environment{Name: env},
		Flags:            map[string]*ufc.Flag{},
		BanditReferences: map[string]json.RawMessage{},
	})
	if err != nil {
		return nil, nil, err
	}
	const empty = `"flags":{}`
	i := bytes.Index(doc, []byte(empty))
	if i < 0 {
		return nil, nil, errors.New("publish: the encoded document has no empty flags object")
	}
	cut := i + len(empty) - 1
	return doc[:cut], doc[cut:], nil
}
