package core

import (
	"context"
	"time"
)

// Role is what an account may do. Roles are ordered: each can do what the
// ones before it can.
type Role string

// Roles.
const (
	RoleViewer Role = "viewer" // reads everything, changes nothing
	RoleEditor Role = "editor" // also changes flags, experiments, allocations, layers and holdouts
	RoleAdmin  Role = "admin"  // also accounts, SDK keys, admin tokens and environments
)

// Roles lists the roles, narrowest first.
var Roles = []Role{RoleViewer, RoleEditor, RoleAdmin}

func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleEditor:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// CheckRole checks a role given by a client.
func CheckRole(field string, r Role) error {
	if !r.Valid() {
		return Invalid(field, "must be viewer, editor or admin")
	}
	return nil
}

// Action is what a request or an operation needs permission for.
type Action string

// Actions, each needing a role (Action.Needs).
const (
	ActRead  Action = "read"  // any signed-in account: viewer
	ActEdit  Action = "edit"  // flags, experiments, allocations, layers, holdouts: editor
	ActAdmin Action = "admin" // accounts, keys, tokens, environments: admin
)

// Needs is the narrowest role that may do a.
func (a Action) Needs() Role {
	switch a {
	case ActRead:
		return RoleViewer
	case ActEdit:
		return RoleEditor
	}
	return RoleAdmin // unknown actions need the widest role
}

// Principal is who makes a request: an account, and the token it used if
// any. Front ends build it from a session or a bearer token (Authenticate,
// AuthenticatePassword, SessionPrincipal) and pass it in the context
// (WithPrincipal).
type Principal struct {
	UserID int64
	Email  string
	// Role is the account's role; EnvRoles overrides it per environment.
	Role     Role
	EnvRoles map[string]Role
	// The token used, if the request carried one (zero for a password
	// session). TokenRole caps the account's role.
	TokenID     int64
	TokenName   string
	TokenPrefix string
	TokenRole   Role
}

// AnyEnvironment, as the env of Allowed, asks whether the principal has
// the role in at least one environment (or everywhere): a front end's check
// of a route whose environment is only known to the operation, which
// checks again in the one it touches.
const AnyEnvironment = "*"

// RoleIn is the principal's role in env ("" for what is not in one
// environment; AnyEnvironment for its widest anywhere): the account's role
// there, capped by the token's.
func (p *Principal) RoleIn(env string) Role {
	r := p.Role
	if env == AnyEnvironment {
		for _, er := range p.EnvRoles {
			if er.rank() > r.rank() {
				r = er
			}
		}
	} else if env != "" {
		if er, ok := p.EnvRoles[env]; ok {
			r = er
		}
	}
	if p.TokenRole != "" && p.TokenRole.rank() < r.rank() {
		r = p.TokenRole
	}
	return r
}

// Actor is how the audit log names the principal: the account's email,
// and the token's name when one was used.
func (p *Principal) Actor() string {
	if p.TokenPrefix != "" {
		return p.Email + " (token " + p.TokenName + ", " + p.TokenPrefix + "…)"
	}
	return p.Email
}

// Allowed is the one permission check: whether p may do a in env ("" for
// what belongs to no environment: accounts, tokens, flag definitions,
// creating environments). A nil principal (nobody signed in) may do
// nothing. Every front end and every core operation asks it.
func Allowed(p *Principal, a Action, env string) bool {
	if p == nil {
		return false
	}
	return p.RoleIn(env).rank() >= a.Needs().rank()
}

type principalKey struct{}

// WithPrincipal makes p the one acting with ctx: core operations check
// its role and the audit log names it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, &p)
}

// PrincipalFrom returns the principal WithPrincipal stored in ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Can is Allowed for the principal of ctx: what a front end asks to decide
// whether to show a control.
func Can(ctx context.Context, a Action, env string) bool {
	return Allowed(PrincipalFrom(ctx), a, env)
}

// require is how an operation checks permission at its top. A context with
// no principal is the system itself (the first start, the local CLI over a
// database file, tests of the core): front ends always set one, and the
// route-by-role tests of the server prove it for every route.
func require(ctx context.Context, a Action, env string) error {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil
	}
	if !Allowed(p, a, env) {
		where := ""
		if env != "" {
			where = " in environment " + env
		}
		return Errorf(EFORBIDDEN, "%s is %s%s; this needs the %s role", p.Email, p.RoleIn(env), where, a.Needs())
	}
	return nil
}

// User is an account.
type User struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Role  Role   `json:"role"`
	// EnvironmentRoles overrides Role in the environments named.
	EnvironmentRoles map[string]Role `json:"environmentRoles,omitempty"`
	HasPassword      bool            `json:"hasPassword"`
	CreatedAt        time.Time       `json:"createdAt"`
	DisabledAt       *time.Time      `json:"disabledAt,omitempty"`
}

func (u User) principal() Principal {
	return Principal{UserID: u.ID, Email: u.Email, Role: u.Role, EnvRoles: u.EnvironmentRoles}
}
