package publish

import (
	"encoding/json"
	"fmt"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// flagToUFC is the one call from publishing into the per-flag conversion
// from the domain to UFC, core.UFCFlag, which the core also validates with.
func flagToUFC(fc *core.FlagConfig) (*ufc.Flag, error) { return core.UFCFlag(&fc.Flag, &fc.Settings) }

// fragment is one flag's compiled form: its member of the document's
// "flags" object, exactly as the SDKs receive it, and the engine's compiled
// flag loaded from those bytes. Fragments are immutable once built, so a
// published environment shares every unchanged one with the next.
type fragment struct {
	key string
	// The versions the fragment was built from. A flag deleted and created
	// again restarts its versions, so its creation time tells the
	// incarnations apart.
	created          int64 // the flag's CreatedAt, Unix microseconds
	flagVer, setsVer int64
	member           []byte // `"key":{...}`
	valueAt          int    // where the flag's object starts in member
	flag             *eval.Flag
	// seq is the install sequence number at which the fragment entered the
	// published set (see Cache.install).
	seq uint64
}

// newer reports whether a read of a flag at (created, flagVer, setsVer) is
// at least as recent as f. Both versions only grow while a flag exists.
func (f *fragment) olderThan(created, flagVer, setsVer int64) bool {
	if created != f.created {
		return created > f.created
	}
	return flagVer >= f.flagVer && setsVer >= f.setsVer
}

// refusal is a flag that publishing refused, and why.
type refusal struct {
	created          int64
	flagVer, setsVer int64
	err              error
}

// compileFragment converts one flag to UFC and loads the result through
// the engine, which is the judge of a valid flag: a flag the engine marks
// malformed is refused, and so is one whose allocations name a variation
// the flag does not have (the conversion would otherwise give that share to
// another variation without a word).
func compileFragment(fc *core.FlagConfig) (*fragment, error) {
	if err := checkVariations(fc); err != nil {
		return nil, err
	}
	w, err := flagToUFC(fc)
	if err != nil {
		return nil, err
	}
	key, err := json.Marshal(w.Key)
	if err != nil {
		return nil, err
	}
	val, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	member := make([]byte, 0, len(key)+1+len(val))
	member = append(append(append(member, key...), ':'), val...)
	// Load exactly the bytes SDKs will read, as a one-flag document.
	doc := make([]byte, 0, len(member)+12)
	doc = append(append(append(doc, `{"flags":{`...), member...), "}}"...)
	snap, err := eval.Load(doc)
	if err != nil {
		return nil, fmt.Errorf("compiled flag does not load: %w", err)
	}
	f := snap.Flag(w.Key)
	if f == nil {
		return nil, fmt.Errorf("compiled flag is missing from its document")
	}
	if f.Err != nil {
		return nil, fmt.Errorf("the engine refuses the compiled flag: %w", f.Err)
	}
	return &fragment{
		key:     fc.Flag.Key,
		created: fc.Flag.CreatedAt.UnixMicro(),
		flagVer: fc.Flag.Version,
		setsVer: fc.Settings.Version,
		member:  member,
		valueAt: len(key) + 1,
		flag:    f,
	}, nil
}

// checkVariations refuses allocations that name a variation the flag does
// not define: two writes validated against different versions of a flag
// can leave such a reference behind (issue 10, item 1).
func checkVariations(fc *core.FlagConfig) error {
	known := make(map[string]bool, len(fc.Flag.Variations))
	for _, v := range fc.Flag.Variations {
		known[v.Key] = true
	}
	for i := range fc.Settings.Allocations {
		a := &fc.Settings.Allocations[i]
		if a.Variation != "" && !known[a.Variation] {
			return fmt.Errorf("allocation %s names unknown variation %q", a.Key, a.Variation)
		}
		for _, w := range a.Weights {
			if !known[w.Variation] {
				return fmt.Errorf("allocation %s weighs unknown variation %q", a.Key, w.Variation)
			}
		}
	}
	return nil
}
