package core

import (
	"context"
	"strings"
)

// SDKKeys lists SDK keys, revoked ones included.
func (c *Core) SDKKeys(ctx context.Context) ([]SDKKey, error) {
	if err := require(ctx, ActRead, ""); err != nil {
		return nil, err
	}
	var out []SDKKey
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.SDKKeys()
		return err
	})
	return out, err
}

// CreateSDKKey creates a server key for an environment. The returned key
// carries the secret, which is not stored and cannot be shown again.
func (c *Core) CreateSDKKey(ctx context.Context, env, name string) (SDKKey, error) {
	return c.createKey(ctx, SDKKey{Environment: env, Name: name, Kind: KeyServer})
}

// CreateClientKey creates a client key for an environment: it reads only
// the CLIENT document and posts assignment events, from the given web
// origins (none: any). The secret is returned once, as with server keys,
// though a client key is public by design once it is in a page.
func (c *Core) CreateClientKey(ctx context.Context, env, name string, origins []string) (SDKKey, error) {
	return c.createKey(ctx, SDKKey{Environment: env, Name: name, Kind: KeyClient, Origins: origins})
}

func (c *Core) createKey(ctx context.Context, k SDKKey) (SDKKey, error) {
	if err := require(ctx, ActAdmin, k.Environment); err != nil {
		return SDKKey{}, err
	}
	k.Name = strings.TrimSpace(k.Name)
	if k.Environment == "" {
		return SDKKey{}, Invalid("environment", "is required")
	}
	if err := checkText("name", k.Name, MaxNameLength, true); err != nil {
		return SDKKey{}, err
	}
	prefix := SDKKeyPrefix
	if k.Kind == KeyClient {
		prefix = ClientKeyPrefix
		origins, err := CheckOrigins(k.Origins)
		if err != nil {
			return SDKKey{}, err
		}
		k.Origins = origins
	} else if len(k.Origins) > 0 {
		return SDKKey{}, Invalid("origins", "only a client key has allowed origins: a server key must never be used from a browser")
	}
	secret, display, hash := newSecret(prefix)
	k.Prefix = display
	err := c.store.Write(ctx, func(tx Tx) (err error) {
		if k, err = tx.InsertSDKKey(k, hash); err != nil {
			return err
		}
		if err := tx.Bump(k.Environment); err != nil {
			return err
		}
		return c.audit(ctx, tx, "create", "sdk_key", k.Prefix, k.Environment, nil, k)
	})
	if err != nil {
		return SDKKey{}, err
	}
	c.changed(k.Environment)
	k.Secret = secret
	return k, nil
}

// RevokeSDKKey revokes an SDK key; servers stop accepting it within a poll.
func (c *Core) RevokeSDKKey(ctx context.Context, id int64) error {
	var k SDKKey
	err := c.store.Write(ctx, func(tx Tx) (err error) {
		if k, err = tx.RevokeSDKKey(id); err != nil {
			return err
		}
		if err := require(ctx, ActAdmin, k.Environment); err != nil {
			return err
		}
		if err := tx.Bump(k.Environment); err != nil {
			return err
		}
		return c.audit(ctx, tx, "revoke", "sdk_key", k.Prefix, k.Environment, nil, nil)
	})
	if err == nil {
		c.changed(k.Environment)
	}
	return err
}

// AdminTokens lists admin tokens, revoked ones included: every token for
// an admin, the principal's own for anyone else.
func (c *Core) AdminTokens(ctx context.Context) ([]AdminToken, error) {
	if err := require(ctx, ActRead, ""); err != nil {
		return nil, err
	}
	var out []AdminToken
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.AdminTokens()
		return err
	})
	if p := PrincipalFrom(ctx); p != nil && !Allowed(p, ActAdmin, "") {
		own := out[:0]
		for _, t := range out {
			if t.UserID == p.UserID {
				own = append(own, t)
			}
		}
		out = own
	}
	return out, err
}

// CreateAdminToken creates a token of the principal's account with its
// role; the secret is returned once.
func (c *Core) CreateAdminToken(ctx context.Context, name string) (AdminToken, error) {
	return c.CreateToken(ctx, name, "")
}

// CreateToken creates an API token of the principal's account (without a
// principal, the system's: the first admin account's). Role "" is the
// principal's own role; a narrower one may be asked for (a viewer token of
// an admin), a wider one is refused. Any account may create tokens for
// itself; the secret is returned once.
func (c *Core) CreateToken(ctx context.Context, name string, role Role) (AdminToken, error) {
	if err := require(ctx, ActRead, ""); err != nil {
		return AdminToken{}, err
	}
	name = strings.TrimSpace(name)
	if err := checkText("name", name, MaxNameLength, true); err != nil {
		return AdminToken{}, err
	}
	if role != "" {
		if err := CheckRole("role", role); err != nil {
			return AdminToken{}, err
		}
	}
	secret, prefix, hash := newSecret(AdminTokenPrefix)
	t, err := c.insertAdminToken(ctx, AdminToken{Name: name, Prefix: prefix, Role: role}, hash)
	if err != nil {
		return AdminToken{}, err
	}
	t.Secret = secret
	return t, nil
}

// insertAdminToken stores t for the principal's account (or the first
// admin's), with a role no wider than the principal's.
func (c *Core) insertAdminToken(ctx context.Context, t AdminToken, hash string) (AdminToken, error) {
	p := PrincipalFrom(ctx)
	err := c.store.Write(ctx, func(tx Tx) (err error) {
		most := RoleAdmin
		if p != nil {
			t.UserID, most = p.UserID, p.RoleIn("")
		} else {
			u, err := tx.FirstAdmin()
			if err != nil {
				return err
			}
			t.UserID = u.ID
		}
		if t.Role == "" {
			t.Role = most
		}
		if t.Role.rank() > most.rank() {
			return Errorf(EFORBIDDEN, "a token cannot have a wider role (%s) than its creator's (%s)", t.Role, most)
		}
		if t, err = tx.InsertAdminToken(t, hash); err != nil {
			return err
		}
		return c.audit(ctx, tx, "create", "admin_token", t.Prefix, "", nil, t)
	})
	return t, err
}

// RevokeAdminToken revokes a token (one's own, or any for an admin) and
// ends its web sessions. The last live token cannot be revoked.
func (c *Core) RevokeAdminToken(ctx context.Context, id int64) error {
	if err := require(ctx, ActRead, ""); err != nil {
		return err
	}
	p := PrincipalFrom(ctx)
	return c.store.Write(ctx, func(tx Tx) error {
		n, err := tx.LiveAdminTokens()
		if err != nil {
			return err
		}
		t, err := tx.RevokeAdminToken(id)
		if err != nil {
			return err
		}
		if p != nil && t.UserID != p.UserID && !Allowed(p, ActAdmin, "") {
			return Errorf(EFORBIDDEN, "token %d belongs to another account; only an admin may revoke it", id)
		}
		if n <= 1 {
			return Errorf(ECONFLICT, "admin token %d is the last live one: create another before revoking it, or nobody can manage this server", id)
		}
		return c.audit(ctx, tx, "revoke", "admin_token", t.Prefix, "", nil, nil)
	})
}

// Bootstrap runs on every start. The first start of a database creates an
// admin token: the one given (ALLOT_ADMIN_TOKEN), or a random one returned
// as created so the caller can print it once. A token given on a later
// start is added if the database does not know it yet.
func (c *Core) Bootstrap(ctx context.Context, given string) (created string, err error) {
	ctx = WithActor(ctx, "system:bootstrap")
	if given != "" && len(given) < minSecretTokenBytes {
		return "", Invalid("ALLOT_ADMIN_TOKEN", "must be at least %d characters", minSecretTokenBytes)
	}
	var first bool
	if err := c.store.Write(ctx, func(tx Tx) (err error) {
		first, err = tx.MarkBootstrapped()
		return err
	}); err != nil {
		return "", err
	}
	if given != "" {
		hash := HashSecretHex(given)
		var known bool
		err := c.store.Read(ctx, func(tx Tx) error {
			_, _, err := tx.AdminTokenByHash(hash)
			if ErrorCode(err) == ENOTFOUND {
				return nil
			}
			known = err == nil
			return err
		})
		if err != nil || known {
			return "", err
		}
		// Show a token of Allot's own form by its prefix, as the others;
		// any other string could be all secret, so show a fingerprint.
		prefix := "sha256:" + hash[:8]
		if strings.HasPrefix(given, AdminTokenPrefix) && len(given) >= len(AdminTokenPrefix)+32 {
			prefix = given[:len(AdminTokenPrefix)+6] // as newSecret shows its own
		}
		_, err = c.insertAdminToken(ctx, AdminToken{Name: "ALLOT_ADMIN_TOKEN", Prefix: prefix}, hash)
		return "", err
	}
	if !first {
		return "", nil
	}
	t, err := c.CreateAdminToken(ctx, "initial")
	return t.Secret, err
}
