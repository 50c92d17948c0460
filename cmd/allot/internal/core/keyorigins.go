package core

import "context"

// SetKeyOrigins replaces the web origins a live client key may be used
// from (none: any), effective as soon as the environment republishes. Only
// a client key has origins: a server key must never be used from a
// browser. Audited with the origins before and after.
func (c *Core) SetKeyOrigins(ctx context.Context, id int64, origins []string) (SDKKey, error) {
	origins, err := CheckOrigins(origins)
	if err != nil {
		return SDKKey{}, err
	}
	var before, after SDKKey
	err = c.store.Write(ctx, func(tx Tx) (err error) {
		if before, err = tx.SetSDKKeyOrigins(id, origins); err != nil {
			return err
		}
		// The key's environment is known once read; a refusal rolls back.
		if err := require(ctx, ActAdmin, before.Environment); err != nil {
			return err
		}
		if before.Kind != KeyClient {
			// Nothing was meant to change: roll back.
			return Invalid("origins", "key %s is a server key; only a client key has allowed origins (a server key must never be used from a browser)", before.Prefix)
		}
		after = before
		after.Origins = origins
		if err := tx.Bump(before.Environment); err != nil {
			return err
		}
		return c.audit(ctx, tx, "update", "sdk_key", before.Prefix, before.Environment,
			map[string]any{"origins": nonNil(before.Origins)}, map[string]any{"origins": nonNil(origins)})
	})
	if err != nil {
		return SDKKey{}, err
	}
	c.changed(after.Environment)
	return after, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
