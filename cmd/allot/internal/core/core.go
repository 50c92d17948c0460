// Package core is Allot's domain core: the types (environments, flags, their
// per-environment allocations, SDK keys, admin tokens, the audit log), the
// errors a client may see, and every operation on them. Each operation
// validates its input (the engine, internal/eval, judges whether a flag can
// be published), runs in one transaction, writes one audit entry and, after
// the commit, tells a Listener what changed.
//
// The API, the web UI and the CLI (through the API) call Core and hold no
// business rules of their own. Storage is behind the Store and Tx interfaces
// defined here; internal/store implements them over SQL, and core never
// imports it.
package core

import (
	"context"
	"log/slog"
)

// Store runs transactions. Read gives fn one consistent snapshot; Write
// gives fn a read-write transaction committed when fn returns nil.
type Store interface {
	Read(ctx context.Context, fn func(Tx) error) error
	Write(ctx context.Context, fn func(Tx) error) error
}

// Tx is what the core needs of a transaction. Methods that change a row
// take the version the caller read and fail with ECONFLICT if it moved.
// Lookups of a missing thing fail with ENOTFOUND.
type Tx interface {
	Environments() ([]Environment, error)
	Environment(name string) (Environment, error)
	InsertEnvironment(name string) (Environment, error) // ECONFLICT if it exists

	Flags() ([]Flag, error)
	// Flag reads a flag; lock also locks its row until the transaction
	// ends (SELECT ... FOR UPDATE), so that writes validated against the
	// flag serialize with writes to it.
	Flag(key string, lock bool) (Flag, error)
	InsertFlag(f Flag) (Flag, error) // ECONFLICT if it exists
	UpdateFlag(f Flag) (Flag, error) // f.Version is the version read
	DeleteFlag(key string, version int64) error

	// Settings reads a flag's settings in an environment (version 0 and
	// off when never written).
	Settings(env, flag string) (FlagSettings, error)
	AllSettings(flag string) ([]FlagSettings, error)
	// PutSettings writes s; s.Version is the version read.
	PutSettings(s FlagSettings) (FlagSettings, error)
	EnvironmentConfig(env string) (EnvironmentConfig, error)
	// Bump moves the revision of env ("" for every environment), so that
	// every replica recompiles it.
	Bump(env string) error

	SDKKeys() ([]SDKKey, error)
	// InsertSDKKey stores k (Environment, Name, Prefix, Kind, Origins)
	// under hash and returns it with its ID and creation time.
	InsertSDKKey(k SDKKey, hash string) (SDKKey, error)
	RevokeSDKKey(id int64) (SDKKey, error) // ENOTFOUND unless live
	// SetSDKKeyOrigins replaces a live key's origins and returns the key
	// as it was (ENOTFOUND unless live).
	SetSDKKeyOrigins(id int64, origins []string) (SDKKey, error)

	AdminTokens() ([]AdminToken, error)
	// LiveAdminTokens counts live admin tokens, locking them.
	LiveAdminTokens() (int, error)
	AdminTokenByHash(hash string) (AdminToken, string, error) // the token and its stored hash
	AdminToken(id int64) (AdminToken, error)                  // revoked or not
	// InsertAdminToken stores t (Name, Prefix, UserID, Role) under hash.
	InsertAdminToken(t AdminToken, hash string) (AdminToken, error)
	RevokeAdminToken(id int64) (AdminToken, error) // ends its sessions too
	// MarkBootstrapped records the first start; it reports whether this
	// call did.
	MarkBootstrapped() (bool, error)

	// Accounts. User and UserByEmail also return the password hash ('' for
	// none); Users and User fill EnvironmentRoles.
	Users() ([]User, error)
	User(id int64) (User, string, error)
	UserByEmail(email string) (User, string, error)
	InsertUser(u User, hash string) (User, error) // ECONFLICT if the email is taken
	// UpdateUser writes Email, Role and DisabledAt; disabling ends the
	// account's sessions.
	UpdateUser(u User) (User, error)
	SetPasswordHash(id int64, hash string) error
	// SetEnvironmentRole sets the account's role in env; "" removes it.
	SetEnvironmentRole(id int64, env string, role Role) error
	// LiveAdmins counts enabled admin accounts, locking them.
	LiveAdmins() (int, error)
	// FirstAdmin is the enabled admin account with the lowest id.
	FirstAdmin() (User, error)

	AppendAudit(e AuditEntry) error
	// Audit returns up to limit entries with an ID below before (0: from
	// the newest), newest first, stopping once maxBytes of before/after
	// have been read (at least one entry).
	Audit(limit int, before int64, maxBytes int) ([]AuditEntry, error)
	// FlagAudit returns up to limit entries about flag: its own (entity
	// flag) and its settings' in env (entity flag_settings), newest first,
	// stopping once maxBytes of before/after have been read (at least one
	// entry).
	FlagAudit(flag, env string, limit, maxBytes int) ([]AuditEntry, error)

	// Layers and holdouts of an environment (issue 15). Update and Delete
	// take the version read (in the value passed) and fail with ECONFLICT
	// if it moved.
	Layers(env string) ([]Layer, error)
	Layer(env, name string) (Layer, error)
	InsertLayer(l Layer) (Layer, error) // ECONFLICT if it exists
	UpdateLayer(l Layer) (Layer, error)
	DeleteLayer(env, name string, version int64) error
	Holdouts(env string) ([]Holdout, error)
	Holdout(env, key string) (Holdout, error)
	InsertHoldout(h Holdout) (Holdout, error) // ECONFLICT if it exists
	UpdateHoldout(h Holdout) (Holdout, error)
}

// Listener hears about committed changes: the flags that changed in env,
// env "" meaning every environment. *publish.Cache implements it.
type Listener interface {
	Changed(env string, flags []string)
}

// Core is the domain core. Its methods are safe for concurrent use.
type Core struct {
	store    Store
	listener Listener
	log      *slog.Logger // reserved for the core's own diagnostics
	newSalt  func() string
	signins  signinLimiter
}

// Options configures a Core. The zero value works.
type Options struct {
	// Listener, if set, is told about every committed change.
	Listener Listener
	Log      *slog.Logger
	// NewSalt draws the shard salts of a new allocation; the default is
	// 64 random bits. Tests that compare runs make it deterministic.
	NewSalt func() string
}

// New returns the core over s.
func New(s Store, o Options) *Core {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.NewSalt == nil {
		o.NewSalt = randomSalt
	}
	return &Core{store: s, listener: o.Listener, log: o.Log, newSalt: o.NewSalt}
}

// changed tells the listener, after a commit.
func (c *Core) changed(env string, flags ...string) {
	if c.listener != nil {
		c.listener.Changed(env, flags)
	}
}

// audit appends one entry for a change made by the actor of ctx.
func (c *Core) audit(ctx context.Context, tx Tx, action, entity, key, env string, before, after any) error {
	e, err := newAuditEntry(Actor(ctx), action, entity, key, env, before, after)
	if err != nil {
		return err
	}
	return tx.AppendAudit(e)
}

type actorKey struct{}

// WithActor names who makes the changes done with ctx, for the audit log.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// Actor names who acts with ctx: its principal (WithPrincipal), else the
// actor WithActor stored, else "system".
func Actor(ctx context.Context) string {
	if p := PrincipalFrom(ctx); p != nil {
		return p.Actor()
	}
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}
