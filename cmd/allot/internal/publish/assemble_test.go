package publish

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// The document assembled from fragments and blocks must be byte for byte
// what encoding/json writes for the whole document, and its gzip form must
// decode (as one gzip member) to the same bytes.
func TestAssembledDocumentEqualsTheMarshalledOne(t *testing.T) {
	for _, n := range []int{0, 1, 2, 31, 33, 500, 1200} {
		var flags []core.FlagConfig
		for i := range n {
			fc := colorFlag(core.Allocation{Key: "ramp", Type: core.Rollout, Percent: core.Percent(i % 10001), Variation: "red", SplitSalt: fmt.Sprintf("salt-%d", i)})
			fc.Flag.Key = fmt.Sprintf("f<%d>&\u00e9", i) // escaped by encoding/json
			flags = append(flags, fc)
		}
		cfg := env(flags...)
		p, err := Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(doc)
		if !bytes.Equal(p.Body, want) {
			t.Fatalf("%d flags: assembled body differs from json.Marshal:\n%.300s\n%.300s", n, p.Body, want)
		}
		zr, err := gzip.NewReader(bytes.NewReader(p.Gzip))
		if err != nil {
			t.Fatal(err)
		}
		zr.Multistream(false)
		got, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d flags: gzip decodes to %d bytes (%v), want %d", n, len(got), err, len(want))
		}
		if p.Snapshot.Len() != n || p.Flags != n {
			t.Fatalf("%d flags: snapshot holds %d", n, p.Snapshot.Len())
		}
		var whole bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&whole, gzip.BestCompression)
		zw.Write(want)
		zw.Close()
		t.Logf("%d flags: %d bytes, gzip in blocks %d, whole %d", n, len(want), len(p.Gzip), whole.Len())
		if n >= 500 && len(p.Gzip) > whole.Len()*5/4 {
			t.Errorf("%d flags: gzip in blocks is %d bytes, whole %d: blocks compress badly", n, len(p.Gzip), whole.Len())
		}
	}
}

// Changing one flag recompresses only its block and the next (whose
// dictionary it is) and leaves every other block's bytes shared with the
// previous document.
func TestOneChangeRecompressesOneBlock(t *testing.T) {
	var flags []core.FlagConfig
	for i := range 2000 {
		fc := colorFlag(core.Allocation{Key: "ramp", Type: core.Rollout, Percent: 5000, Variation: "red", SplitSalt: fmt.Sprintf("salt-%d", i)})
		fc.Flag.Key = fmt.Sprintf("flag-%04d", i)
		flags = append(flags, fc)
	}
	p1, err := Build(env(flags...))
	if err != nil {
		t.Fatal(err)
	}
	frags := append([]*fragment(nil), p1.frags...)
	fc := flags[1000]
	fc.Settings.Allocations[0].Percent = 100
	fc.Settings.Version++
	f, err := compileFragment(&fc)
	if err != nil {
		t.Fatal(err)
	}
	frags[1000] = f
	var a assembler
	p2, err := a.assemble("production", epoch, frags, p1)
	if err != nil {
		t.Fatal(err)
	}
	fresh := 0
	for i, b := range p2.blocks {
		if &b.z[0] != &p1.blocks[i].z[0] {
			fresh++
		}
	}
	if len(p2.blocks) < 20 || fresh != 2 {
		t.Fatalf("%d of %d blocks recompressed, want 2", fresh, len(p2.blocks))
	}
	if p2.ETag == p1.ETag {
		t.Fatal("ETag did not change")
	}
	zr, err := gzip.NewReader(bytes.NewReader(p2.Gzip))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, p2.Body) {
		t.Fatalf("reused blocks do not decode to the body: %v", err)
	}
}
