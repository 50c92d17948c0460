package core

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"runtime"
	"strings"
	"time"
)

// Users lists the accounts (any signed-in account may read them, as it
// reads the audit log that names them).
func (c *Core) Users(ctx context.Context) ([]User, error) {
	if err := require(ctx, ActRead, ""); err != nil {
		return nil, err
	}
	var out []User
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.Users()
		return err
	})
	return out, err
}

// User returns one account.
func (c *Core) User(ctx context.Context, id int64) (User, error) {
	if err := require(ctx, ActRead, ""); err != nil {
		return User{}, err
	}
	var u User
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		u, _, err = tx.User(id)
		return err
	})
	return u, err
}

// CreateUser creates an account (admins only). The email is normalised
// (NormalizeEmail); the password must meet CheckPassword.
func (c *Core) CreateUser(ctx context.Context, email, password string, role Role) (User, error) {
	if err := require(ctx, ActAdmin, ""); err != nil {
		return User{}, err
	}
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := CheckRole("role", role); err != nil {
		return User{}, err
	}
	if err := CheckPassword(password); err != nil {
		return User{}, err
	}
	hash, err := c.hashPassword(ctx, password)
	if err != nil {
		return User{}, err
	}
	var u User
	err = c.store.Write(ctx, func(tx Tx) (err error) {
		if u, err = tx.InsertUser(User{Email: email, Role: role}, hash); err != nil {
			return err
		}
		return c.audit(ctx, tx, "create", "user", u.Email, "", nil, u)
	})
	return u, err
}

// SetUserRole changes an account's role (admins only). The last enabled
// admin cannot be demoted: nobody could manage accounts any more.
func (c *Core) SetUserRole(ctx context.Context, id int64, role Role) (User, error) {
	if err := CheckRole("role", role); err != nil {
		return User{}, err
	}
	return c.editUser(ctx, id, func(tx Tx, u *User) error {
		if u.Role == RoleAdmin && role != RoleAdmin && u.DisabledAt == nil {
			if err := lastAdmin(tx, u); err != nil {
				return err
			}
		}
		u.Role = role
		return nil
	})
}

// SetEnvironmentRole gives an account another role in one environment
// than its own (an editor of staging who is a viewer of production); role ""
// removes the override. Admins only.
func (c *Core) SetEnvironmentRole(ctx context.Context, id int64, env string, role Role) (User, error) {
	if role != "" {
		if err := CheckRole("role", role); err != nil {
			return User{}, err
		}
	}
	if env == "" {
		return User{}, Invalid("environment", "is required")
	}
	return c.editUser(ctx, id, func(tx Tx, u *User) error {
		if err := tx.SetEnvironmentRole(u.ID, env, role); err != nil {
			return err
		}
		next := map[string]Role{}
		for k, v := range u.EnvironmentRoles {
			next[k] = v
		}
		if role == "" {
			delete(next, env)
		} else {
			next[env] = role
		}
		u.EnvironmentRoles = next
		return nil
	})
}

// DisableUser disables an account (admins only): it can no longer sign in,
// its sessions end and its tokens stop working. The last enabled admin
// cannot be disabled.
func (c *Core) DisableUser(ctx context.Context, id int64) (User, error) {
	return c.editUser(ctx, id, func(tx Tx, u *User) error {
		if u.DisabledAt != nil {
			return nil
		}
		if u.Role == RoleAdmin {
			if err := lastAdmin(tx, u); err != nil {
				return err
			}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		u.DisabledAt = &now
		return nil
	})
}

// EnableUser enables a disabled account again (admins only).
func (c *Core) EnableUser(ctx context.Context, id int64) (User, error) {
	return c.editUser(ctx, id, func(tx Tx, u *User) error {
		u.DisabledAt = nil
		return nil
	})
}

func lastAdmin(tx Tx, u *User) error {
	n, err := tx.LiveAdmins()
	if err != nil {
		return err
	}
	if n <= 1 {
		return Errorf(ECONFLICT, "%s is the last enabled admin: make another account admin first, or nobody can manage this server", u.Email)
	}
	return nil
}

// editUser runs fn on account id in one transaction, writes it and the
// audit entry. Admins only.
func (c *Core) editUser(ctx context.Context, id int64, fn func(Tx, *User) error) (User, error) {
	if err := require(ctx, ActAdmin, ""); err != nil {
		return User{}, err
	}
	var u User
	err := c.store.Write(ctx, func(tx Tx) error {
		before, _, err := tx.User(id)
		if err != nil {
			return err
		}
		u = before
		if err := fn(tx, &u); err != nil {
			return err
		}
		if u, err = tx.UpdateUser(u); err != nil {
			return err
		}
		return c.audit(ctx, tx, "update", "user", u.Email, "", before, u)
	})
	return u, err
}

// SetPassword sets an account's password: an admin may set anyone's, and
// anyone their own.
func (c *Core) SetPassword(ctx context.Context, id int64, password string) error {
	if p := PrincipalFrom(ctx); p != nil && p.UserID != id {
		if err := require(ctx, ActAdmin, ""); err != nil {
			return err
		}
	}
	if err := CheckPassword(password); err != nil {
		return err
	}
	hash, err := c.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	return c.store.Write(ctx, func(tx Tx) error {
		u, _, err := tx.User(id)
		if err != nil {
			return err
		}
		if err := tx.SetPasswordHash(id, hash); err != nil {
			return err
		}
		// The hash is never in the audit log; the fact of the change is.
		return c.audit(ctx, tx, "set_password", "user", u.Email, "", nil, nil)
	})
}

// hashSlots bounds the argon2id hashes computed at once: each takes
// argonMemory, and a flood of sign-ins must queue, not exhaust memory.
var hashSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))

func (c *Core) hashPassword(ctx context.Context, pw string) (string, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-hashSlots }()
	return HashPassword(pw), nil
}

func verifyPassword(ctx context.Context, stored, pw string) (bool, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-hashSlots }()
	return VerifyPassword(stored, pw), nil
}

// AuthenticatePassword signs in with an email and a password, from the
// client address ip (for the rate limit). Too many failures for the
// account or the address give ERATELIMITED with a RetryAfter; any other
// failure is one EUNAUTHORIZED error that does not say whether the account
// exists, and takes as long either way.
func (c *Core) AuthenticatePassword(ctx context.Context, email, password, ip string) (Principal, error) {
	unauthorized := Errorf(EUNAUTHORIZED, "wrong email or password, or the account is disabled")
	email = strings.ToLower(strings.TrimSpace(email))
	if len(email) > MaxEmailLength || len(password) > 4*MaxPasswordLength {
		return Principal{}, unauthorized
	}
	if wait := c.signins.blocked(time.Now(), "ip:"+ip, "user:"+email); wait > 0 {
		e := Errorf(ERATELIMITED, "too many failed sign-ins; try again in %d seconds", int((wait+time.Second-1)/time.Second))
		e.RetryAfter = wait
		return Principal{}, e
	}
	var u User
	var stored string
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		u, stored, err = tx.UserByEmail(email)
		return err
	})
	if err != nil && ErrorCode(err) != ENOTFOUND {
		return Principal{}, err
	}
	hash := stored
	if hash == "" {
		hash = dummyHash()
	}
	ok, verr := verifyPassword(ctx, hash, password)
	if verr != nil {
		return Principal{}, verr
	}
	if err != nil || stored == "" || !ok || u.DisabledAt != nil {
		c.signins.fail(time.Now(), "ip:"+ip, "user:"+email)
		return Principal{}, unauthorized
	}
	return u.principal(), nil
}

// SessionPrincipal is the principal of a web session: its account and, if
// it signed in with a token, that token (whose role caps the account's).
// A disabled account, or a revoked token, is EUNAUTHORIZED.
func (c *Core) SessionPrincipal(ctx context.Context, userID, tokenID int64) (Principal, error) {
	var p Principal
	err := c.store.Read(ctx, func(tx Tx) error {
		u, _, err := tx.User(userID)
		if ErrorCode(err) == ENOTFOUND {
			return Errorf(EUNAUTHORIZED, "the account of this session no longer exists")
		}
		if err != nil {
			return err
		}
		if u.DisabledAt != nil {
			return Errorf(EUNAUTHORIZED, "the account %s is disabled", u.Email)
		}
		p = u.principal()
		return nil
	})
	if err != nil || tokenID == 0 {
		return p, err
	}
	var t AdminToken
	err = c.store.Read(ctx, func(tx Tx) (err error) {
		t, err = tx.AdminToken(tokenID)
		return err
	})
	if ErrorCode(err) == ENOTFOUND || err == nil && (t.RevokedAt != nil || t.UserID != p.UserID) {
		return Principal{}, Errorf(EUNAUTHORIZED, "the token of this session was revoked")
	}
	if err != nil {
		return Principal{}, err
	}
	p.TokenID, p.TokenName, p.TokenPrefix, p.TokenRole = t.ID, t.Name, t.Prefix, t.Role
	return p, nil
}

// Authenticate returns the principal of a live admin token of an enabled
// account, or an EUNAUTHORIZED error. The stored hash is compared in
// constant time.
func (c *Core) Authenticate(ctx context.Context, secret string) (Principal, error) {
	unauthorized := Errorf(EUNAUTHORIZED, "invalid or revoked admin token")
	if secret == "" {
		return Principal{}, unauthorized
	}
	want := HashSecret(secret)
	var t AdminToken
	var u User
	var stored string
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		t, stored, err = tx.AdminTokenByHash(hex.EncodeToString(want[:]))
		if err != nil {
			return err
		}
		u, _, err = tx.User(t.UserID)
		return err
	})
	if ErrorCode(err) == ENOTFOUND {
		return Principal{}, unauthorized
	}
	if err != nil {
		return Principal{}, err
	}
	if t.RevokedAt != nil || u.DisabledAt != nil {
		return Principal{}, unauthorized
	}
	got, err := hex.DecodeString(stored)
	if err != nil || subtle.ConstantTimeCompare(got, want[:]) != 1 {
		return Principal{}, unauthorized
	}
	p := u.principal()
	p.TokenID, p.TokenName, p.TokenPrefix, p.TokenRole = t.ID, t.Name, t.Prefix, t.Role
	return p, nil
}

// BootstrapAccount runs on every start, after Bootstrap. While no account
// has a password, it gives the first admin account one: password if given
// (ALLOT_ADMIN_PASSWORD), else a random one returned as created so that the
// caller prints it once; email, if given (ALLOT_ADMIN_EMAIL), renames that
// account first. It returns the account's email.
func (c *Core) BootstrapAccount(ctx context.Context, email, password string) (account, created string, err error) {
	ctx = WithActor(ctx, "system:bootstrap")
	if email != "" {
		if email, err = NormalizeEmail(email); err != nil {
			return "", "", Invalid("ALLOT_ADMIN_EMAIL", "%s", ErrorMessage(err))
		}
	}
	if password != "" {
		if err := CheckPassword(password); err != nil {
			return "", "", Invalid("ALLOT_ADMIN_PASSWORD", "%s", ErrorMessage(err))
		}
	}
	var first User
	var someHasPassword bool
	err = c.store.Read(ctx, func(tx Tx) error {
		users, err := tx.Users()
		if err != nil {
			return err
		}
		for _, u := range users {
			someHasPassword = someHasPassword || u.HasPassword
		}
		first, err = tx.FirstAdmin()
		return err
	})
	if err != nil || someHasPassword {
		return first.Email, "", err
	}
	pw := password
	if pw == "" {
		var b [12]byte
		randRead(b[:])
		pw = hex.EncodeToString(b[:])
		created = pw
	}
	hash, err := c.hashPassword(ctx, pw)
	if err != nil {
		return "", "", err
	}
	err = c.store.Write(ctx, func(tx Tx) error {
		before := first
		if email != "" && email != first.Email {
			first.Email = email
			var err error
			if first, err = tx.UpdateUser(first); err != nil {
				return err
			}
		}
		if err := tx.SetPasswordHash(first.ID, hash); err != nil {
			return err
		}
		first.HasPassword = true
		return c.audit(ctx, tx, "set_password", "user", first.Email, "", before, first)
	})
	return first.Email, created, err
}
