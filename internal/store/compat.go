package store

import (
	"context"

	"github.com/allot-dev/allot/internal/core"
)

// The operations below moved to internal/core, which validates, runs the
// transaction, audits and notifies. These forwards keep callers of the old
// *DB methods (other branches' code and tests) working, through the core,
// while branches merge; new code calls core.Core. The lead deletes this
// file after the merge.

func (d *DB) core() *core.Core { return core.New(d, core.Options{}) }

// Deprecated: use core.Core.
func (d *DB) Environments(ctx context.Context) ([]Environment, error) {
	return d.core().Environments(ctx)
}

// Deprecated: use core.Core.
func (d *DB) Environment(ctx context.Context, name string) (Environment, error) {
	return d.core().Environment(ctx, name)
}

// Deprecated: use core.Core.
func (d *DB) CreateEnvironment(ctx context.Context, name string) (Environment, error) {
	return d.core().CreateEnvironment(ctx, name)
}

// Deprecated: use core.Core.
func (d *DB) Flags(ctx context.Context) ([]Flag, error) { return d.core().Flags(ctx) }

// Deprecated: use core.Core.
func (d *DB) Flag(ctx context.Context, key string) (Flag, error) { return d.core().Flag(ctx, key) }

// Deprecated: use core.Core.
func (d *DB) CreateFlag(ctx context.Context, f Flag) (Flag, error) {
	return d.core().CreateFlag(ctx, f)
}

// Deprecated: use core.Core.
func (d *DB) UpdateFlag(ctx context.Context, f Flag) (Flag, error) {
	return d.core().UpdateFlag(ctx, f)
}

// Deprecated: use core.Core.
func (d *DB) DeleteFlag(ctx context.Context, key string, version int64) error {
	return d.core().DeleteFlag(ctx, key, version)
}

// Deprecated: use core.Core.
func (d *DB) FlagSettings(ctx context.Context, env, flag string) (FlagSettings, error) {
	return d.core().FlagSettings(ctx, env, flag)
}

// Deprecated: use core.Core.
func (d *DB) UpdateFlagSettings(ctx context.Context, s FlagSettings) (before, after FlagSettings, err error) {
	ch, err := d.core().UpdateSettings(ctx, s)
	return ch.Before, ch.After, err
}

// Deprecated: use core.Core.
func (d *DB) EnvironmentConfig(ctx context.Context, env string) (EnvironmentConfig, error) {
	return d.core().EnvironmentConfig(ctx, env)
}

// Deprecated: use core.Core.
func (d *DB) CreateSDKKey(ctx context.Context, env, name string) (SDKKey, error) {
	return d.core().CreateSDKKey(ctx, env, name)
}

// Deprecated: use core.Core.
func (d *DB) SDKKeys(ctx context.Context) ([]SDKKey, error) { return d.core().SDKKeys(ctx) }

// Deprecated: use core.Core.
func (d *DB) RevokeSDKKey(ctx context.Context, id int64) error {
	return d.core().RevokeSDKKey(ctx, id)
}

// Deprecated: use core.Core.
func (d *DB) CreateAdminToken(ctx context.Context, name string) (AdminToken, error) {
	return d.core().CreateAdminToken(ctx, name)
}

// Deprecated: use core.Core.
func (d *DB) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	return d.core().AdminTokens(ctx)
}

// Deprecated: use core.Core.
func (d *DB) RevokeAdminToken(ctx context.Context, id int64) error {
	return d.core().RevokeAdminToken(ctx, id)
}

// Deprecated: use core.Core.
func (d *DB) AuthenticateAdmin(ctx context.Context, secret string) (AdminToken, error) {
	return d.core().Authenticate(ctx, secret)
}

// Deprecated: use core.Core.
func (d *DB) Bootstrap(ctx context.Context, given string) (string, error) {
	return d.core().Bootstrap(ctx, given)
}

// Deprecated: use core.Core.
func (d *DB) Audit(ctx context.Context, limit int, before int64) ([]AuditEntry, error) {
	if limit <= 0 || limit > core.MaxAuditLimit {
		limit = 100
	}
	p, err := d.core().Audit(ctx, limit, before)
	return p.Entries, err
}
