package eval

import (
	"time"

	"github.com/allot-dev/allot/internal/ufc"
)

// Assemble builds a Snapshot of a SERVER document from flags compiled
// separately (each taken from the Snapshot of a document holding only that
// flag). It lets a server that republishes after every change recompile
// only the flags that changed: the flags are shared, not copied, which is
// safe because a compiled Flag is immutable.
func Assemble(environment string, createdAt time.Time, flags []*Flag) *Snapshot {
	s := &Snapshot{
		CreatedAt:   createdAt,
		Environment: environment,
		Format:      ufc.FormatServer,
		flags:       make(map[string]*Flag, len(flags)),
	}
	for _, f := range flags {
		if f != nil && !f.obfuscated {
			s.flags[f.Key] = f
		}
	}
	return s
}
