package core

import "context"

// ---- environments

// Environments lists the environments by name.
func (c *Core) Environments(ctx context.Context) ([]Environment, error) {
	var out []Environment
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.Environments()
		return err
	})
	return out, err
}

// Environment returns one environment.
func (c *Core) Environment(ctx context.Context, name string) (Environment, error) {
	var out Environment
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.Environment(name)
		return err
	})
	return out, err
}

// CreateEnvironment creates an environment in which every flag is off.
func (c *Core) CreateEnvironment(ctx context.Context, name string) (Environment, error) {
	if err := require(ctx, ActAdmin, ""); err != nil {
		return Environment{}, err
	}
	if err := ValidateEnvironmentName(name); err != nil {
		return Environment{}, err
	}
	var e Environment
	err := c.store.Write(ctx, func(tx Tx) error {
		envs, err := tx.Environments()
		if err != nil {
			return err
		}
		if len(envs) >= MaxEnvironments {
			return Invalid("name", "there are %d environments; the limit is %d", len(envs), MaxEnvironments)
		}
		if e, err = tx.InsertEnvironment(name); err != nil {
			return err
		}
		return c.audit(ctx, tx, "create", "environment", name, name, nil, e)
	})
	if err == nil {
		c.changed(name)
	}
	return e, err
}

// EnvironmentConfig reads everything that goes into an environment's
// published configuration in one read transaction, so a write that lands
// meanwhile is either wholly in it or wholly out.
func (c *Core) EnvironmentConfig(ctx context.Context, env string) (EnvironmentConfig, error) {
	var out EnvironmentConfig
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.EnvironmentConfig(env)
		return err
	})
	return out, err
}

// ---- flags

// Flags lists the flag definitions by key.
func (c *Core) Flags(ctx context.Context) ([]Flag, error) {
	var out []Flag
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.Flags()
		return err
	})
	return out, err
}

// Flag returns one flag definition.
func (c *Core) Flag(ctx context.Context, key string) (Flag, error) {
	var out Flag
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.Flag(key, false)
		return err
	})
	return out, err
}

// CreateFlag creates a flag; it starts off, with no allocations, in every
// environment.
func (c *Core) CreateFlag(ctx context.Context, f Flag) (Flag, error) {
	out, _, err := c.createFlag(ctx, f, nil)
	return out, err
}

// CreateFlagWith creates a flag and its first settings in one environment
// (the web UI's "new experiment": a flag and its experiment) in one
// transaction: both are written, or neither.
func (c *Core) CreateFlagWith(ctx context.Context, f Flag, s FlagSettings) (Flag, Change, error) {
	return c.createFlag(ctx, f, &s)
}

func (c *Core) createFlag(ctx context.Context, f Flag, s *FlagSettings) (Flag, Change, error) {
	if err := require(ctx, ActEdit, ""); err != nil {
		return Flag{}, Change{}, err
	}
	var ch Change
	if err := checkFlag(&f); err != nil {
		return Flag{}, ch, err
	}
	empty := FlagSettings{Flag: f.Key}
	if err := check(&f, &empty); err != nil {
		return Flag{}, ch, err
	}
	if s != nil {
		s.Flag, s.Version = f.Key, 0
	}
	f.ArchivedAt = nil // a new flag is live; ArchiveFlag archives
	var out Flag
	err := c.store.Write(ctx, func(tx Tx) error {
		var err error
		if out, err = tx.InsertFlag(f); err != nil {
			return err
		}
		if err := tx.Bump(""); err != nil {
			return err
		}
		if err := c.audit(ctx, tx, "create", "flag", f.Key, "", nil, out); err != nil {
			return err
		}
		if s == nil {
			return nil
		}
		ch, err = c.writeSettings(ctx, tx, *s, nil)
		return err
	})
	if err != nil {
		return Flag{}, Change{}, err
	}
	c.changed("", f.Key)
	return out, ch, nil
}

// UpdateFlag replaces a flag's description and variations. f.Version must be
// the version the caller read. The variation type cannot change, and the
// flag must stay valid in every environment (a variation still used by an
// allocation cannot be removed).
func (c *Core) UpdateFlag(ctx context.Context, f Flag) (Flag, error) {
	if err := require(ctx, ActEdit, ""); err != nil {
		return Flag{}, err
	}
	if err := checkFlag(&f); err != nil {
		return Flag{}, err
	}
	var out Flag
	err := c.store.Write(ctx, func(tx Tx) error {
		// The lock makes a concurrent settings write, validated against
		// the old variations, wait for this one and then see the new ones.
		before, err := tx.Flag(f.Key, true)
		if err != nil {
			return err
		}
		if before.Version != f.Version {
			return Errorf(ECONFLICT, "flag %q is at version %d, not %d: reload and retry", f.Key, before.Version, f.Version)
		}
		// Archiving has operations of its own (ArchiveFlag, RestoreFlag).
		f.ArchivedAt = before.ArchivedAt
		if before.VariationType != f.VariationType {
			return Invalid("variationType", "cannot change from %s; create a new flag", before.VariationType)
		}
		settings, err := tx.AllSettings(f.Key)
		if err != nil {
			return err
		}
		empty := FlagSettings{Flag: f.Key}
		if err := check(&f, &empty); err != nil {
			return err
		}
		if err := checkRunningValues(&before, &f, settings); err != nil {
			return err
		}
		for _, s := range settings {
			if err := checkSettings(&s, &f); err != nil {
				return Invalid("variations", "environment %s still uses a removed variation (%v)", s.Environment, err)
			}
			if err := check(&f, &s); err != nil {
				return Invalid("variations", "environment %s would no longer publish (%v)", s.Environment, err)
			}
		}
		if out, err = tx.UpdateFlag(f); err != nil {
			return err
		}
		if err := tx.Bump(""); err != nil {
			return err
		}
		return c.audit(ctx, tx, "update", "flag", f.Key, "", before, out)
	})
	if err == nil {
		c.changed("", f.Key)
	}
	return out, err
}

// DeleteFlag deletes a flag and its settings everywhere. version must be
// the version the caller read.
func (c *Core) DeleteFlag(ctx context.Context, key string, version int64) error {
	if err := require(ctx, ActEdit, ""); err != nil {
		return err
	}
	err := c.store.Write(ctx, func(tx Tx) error {
		before, err := tx.Flag(key, true)
		if err != nil {
			return err
		}
		if before.Version != version {
			return Errorf(ECONFLICT, "flag %q is at version %d, not %d: reload and retry", key, before.Version, version)
		}
		// A layer or holdout would keep a member that no longer exists.
		all, err := tx.AllSettings(key)
		if err != nil {
			return err
		}
		for _, s := range all {
			for _, a := range s.Allocations {
				if a.Layer != nil {
					return Errorf(ECONFLICT, "experiment %s of flag %s is in layer %s in %s: take it out of the layer first", a.Key, key, a.Layer.Name, s.Environment)
				}
				if a.Holdout != nil {
					return Errorf(ECONFLICT, "experiment %s of flag %s is in holdout %s in %s: a holdout's experiments cannot be deleted", a.Key, key, a.Holdout.Key, s.Environment)
				}
			}
		}
		if err := tx.DeleteFlag(key, version); err != nil {
			return err
		}
		if err := tx.Bump(""); err != nil {
			return err
		}
		return c.audit(ctx, tx, "delete", "flag", key, "", before, nil)
	})
	if err == nil {
		c.changed("", key)
	}
	return err
}
