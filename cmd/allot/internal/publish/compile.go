// Package publish turns an environment's flags into the UFC document SDKs
// download, and keeps one compiled, pre-compressed copy per environment in
// memory so that serving it touches no database.
//
// It sits between the store (what admins edit) and the HTTP layer (what
// SDKs fetch) because both the compiler and the cache are pure of HTTP and
// deserve their own tests: the property tests over 100,000 subjects live
// here.
package publish

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

// Compile builds an environment's UFC document (spec section 8.5):
// createdAt, format SERVER, the environment's name, every flag with
// totalShards 10000 and an explicit doLog on every allocation,
// banditReferences {} and no bandits key.
//
// Each flag is core.UFCFlag, the conversion the core also validates with.
//
// The output is deterministic (createdAt is the environment's last change),
// so replicas sharing a database serve identical bytes and ETags.
func Compile(cfg core.EnvironmentConfig) (*ufc.Document, error) {
	doc := &ufc.Document{
		CreatedAt:        cfg.Environment.UpdatedAt.UTC().Format(time.RFC3339Nano),
		Format:           ufc.FormatServer,
		Environment:      ufc.Environment{Name: cfg.Environment.Name},
		Flags:            make(map[string]*ufc.Flag, len(cfg.Flags)),
		BanditReferences: map[string]json.RawMessage{},
	}
	for i := range cfg.Flags {
		if !cfg.Flags[i].Flag.Published() {
			continue
		}
		f, err := core.UFCFlag(&cfg.Flags[i].Flag, &cfg.Flags[i].Settings)
		if err != nil {
			return nil, fmt.Errorf("flag %s: %w", cfg.Flags[i].Flag.Key, err)
		}
		doc.Flags[f.Key] = f
	}
	return doc, nil
}
