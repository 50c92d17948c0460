package storetest

import (
	"context"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// Ops is the domain core over db, for tests that set up data directly
// rather than through a server; it adds the two call shapes those tests
// use most (settings before and after, authenticate by secret).
type Ops struct{ *core.Core }

// OpsOn returns the domain core over db, with no listener.
func OpsOn(db *store.DB) Ops { return Ops{core.New(db, core.Options{})} }

// UpdateFlagSettings is core.UpdateSettings returning the settings before
// and after the change.
func (o Ops) UpdateFlagSettings(ctx context.Context, s core.FlagSettings) (before, after core.FlagSettings, err error) {
	ch, err := o.UpdateSettings(ctx, s)
	return ch.Before, ch.After, err
}

// AuthenticateAdmin is core.Authenticate.
func (o Ops) AuthenticateAdmin(ctx context.Context, secret string) (core.Principal, error) {
	return o.Authenticate(ctx, secret)
}
