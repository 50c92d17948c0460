package core

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Holdouts (issue 15, docs/layers-and-holdouts.md): a holdout reserves a
// share of subjects in an environment who get the status-quo variation of
// every experiment it covers; once an experiment ships a winner, the
// holdout's "all shipped" half gets the winner and its "status quo" half
// keeps the old variation. UFCFlag compiles it as Eppo's servers do: an
// allocation before the experiment's, whose two splits carry three shards
// and extraLogging {holdoutKey, holdoutVariation}.

// Holdout is a holdout and the experiments it covers.
type Holdout struct {
	Environment string  `json:"environment"`
	Key         string  `json:"key"`
	Percent     Percent `json:"percent"`
	// Global holdouts cover every experiment created in the environment
	// after them (one per environment); others cover the experiments
	// added to them.
	Global    bool          `json:"global,omitempty"`
	Flags     []HoldoutFlag `json:"flags"`
	Version   int64         `json:"version"`
	CreatedAt time.Time     `json:"createdAt"`
	UpdatedAt time.Time     `json:"updatedAt"`
}

// HoldoutFlag is one experiment a holdout covers.
type HoldoutFlag struct {
	Flag       string `json:"flag"`
	Allocation string `json:"allocation"`
	StatusQuo  string `json:"statusQuo"`
	// Shipped is the winner once shipped, "" before.
	Shipped string `json:"shipped,omitempty"`
}

// HoldoutPart is the holdout an experiment allocation carries, set by the
// core only (AddHoldoutFlag, ShipHoldout); a client cannot set or change it
// through the settings.
type HoldoutPart struct {
	Key       string  `json:"key"`
	Percent   Percent `json:"percent"`
	StatusQuo string  `json:"statusQuo"`
	Shipped   string  `json:"shipped,omitempty"`
}

// Holdout halves, as extraLogging's holdoutVariation names them. Eppo's
// JavaScript SDK spells the second all_shipped_variants; readers accept
// both.
const (
	HoldoutStatusQuo  = "status_quo"
	HoldoutAllShipped = "all_shipped"
)

// MaxHoldouts is the number of holdouts per environment, MaxHoldoutFlags
// the experiments one holdout covers.
const (
	MaxHoldouts     = 100
	MaxHoldoutFlags = 1000
)

// HoldoutTrafficSalt and HoldoutSplitSalt are the salts of a holdout's
// shards: per holdout, not per flag, so a subject in the holdout is in it
// for every flag it covers.
func HoldoutTrafficSalt(key string) string { return key + "-holdout-traffic" }
func HoldoutSplitSalt(key string) string   { return key + "-holdout-split" }

// Holdouts lists the holdouts of env by key.
func (c *Core) Holdouts(ctx context.Context, env string) ([]Holdout, error) {
	var out []Holdout
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		out, err = tx.Holdouts(env)
		return err
	})
	return out, err
}

// Holdout returns one holdout.
func (c *Core) Holdout(ctx context.Context, env, key string) (Holdout, error) {
	var out Holdout
	err := c.store.Read(ctx, func(tx Tx) (err error) {
		out, err = tx.Holdout(env, key)
		return err
	})
	return out, err
}

// CreateHoldout creates a holdout of percent (at most 50 %) covering no
// experiment yet. Its percentage never changes: that would move subjects
// in or out of it. A global holdout then covers every experiment created
// in env (never one already there: covering a running experiment would
// move its subjects); there is at most one per environment.
func (c *Core) CreateHoldout(ctx context.Context, env, key string, percent Percent, global bool) (Holdout, error) {
	if err := require(ctx, ActEdit, env); err != nil {
		return Holdout{}, err
	}
	if err := checkKey("key", key); err != nil {
		return Holdout{}, err
	}
	if percent < 1 || percent > Whole/2 {
		return Holdout{}, Invalid("percent", "must be from 0.01 to 50 percent")
	}
	var out Holdout
	err := c.store.Write(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		all, err := tx.Holdouts(env)
		if err != nil {
			return err
		}
		if len(all) >= MaxHoldouts {
			return Invalid("key", "environment %s has %d holdouts; the limit is %d", env, len(all), MaxHoldouts)
		}
		for _, o := range all {
			if global && o.Global {
				return Errorf(ECONFLICT, "environment %s already has a global holdout, %s", env, o.Key)
			}
		}
		h := Holdout{Environment: env, Key: key, Percent: percent, Global: global, Flags: []HoldoutFlag{}}
		if out, err = tx.InsertHoldout(h); err != nil {
			return err
		}
		return c.audit(ctx, tx, "create", "holdout", key, env, nil, out)
	})
	return out, err
}

// AddHoldoutFlag puts experiment alloc of flag in holdout key, with
// statusQuo ("" for the experiment's first weighted variation in the flag's
// order) as what the holdout gets. The experiment must not be running:
// covering it would move the holdout's subjects out of their variations.
func (c *Core) AddHoldoutFlag(ctx context.Context, env, key, flag, alloc, statusQuo string) (Holdout, Change, error) {
	return c.holdoutEdit(ctx, env, key, flag, alloc, func(h *Holdout, def *Flag, a *Allocation) error {
		if a.Type != Experiment {
			return Invalid("allocation", "%s is a %s; only an experiment can be in a holdout", a.Key, a.Type)
		}
		if a.Holdout != nil {
			return Errorf(ECONFLICT, "experiment %s of flag %s is already in holdout %s", a.Key, flag, a.Holdout.Key)
		}
		if a.Status == Running {
			return Errorf(ECONFLICT, "experiment %s of flag %s is running: adding it to holdout %s would move the holdout's subjects to the status quo; add it before starting it", a.Key, flag, key)
		}
		if len(h.Flags) >= MaxHoldoutFlags {
			return Invalid("flag", "holdout %s covers %d experiments; the limit is %d", key, len(h.Flags), MaxHoldoutFlags)
		}
		if statusQuo == "" {
			statusQuo = firstWeighted(def, a)
		}
		if !slices.ContainsFunc(def.Variations, func(v Variation) bool { return v.Key == statusQuo }) {
			return Invalid("statusQuo", "names no variation of flag %s: %q", flag, statusQuo)
		}
		h.Flags = append(h.Flags, HoldoutFlag{Flag: flag, Allocation: a.Key, StatusQuo: statusQuo})
		a.Holdout = &HoldoutPart{Key: key, Percent: h.Percent, StatusQuo: statusQuo}
		return nil
	})
}

// ShipHoldout records that experiment alloc of flag shipped winner: the
// holdout's all-shipped half now gets it, its status-quo half does not.
func (c *Core) ShipHoldout(ctx context.Context, env, key, flag, alloc, winner string) (Holdout, Change, error) {
	return c.holdoutEdit(ctx, env, key, flag, alloc, func(h *Holdout, def *Flag, a *Allocation) error {
		i := slices.IndexFunc(h.Flags, func(f HoldoutFlag) bool { return f.Flag == flag && f.Allocation == a.Key })
		if i < 0 || a.Holdout == nil || a.Holdout.Key != key {
			return Errorf(ENOTFOUND, "holdout %s does not cover experiment %s of flag %s", key, a.Key, flag)
		}
		if !slices.ContainsFunc(def.Variations, func(v Variation) bool { return v.Key == winner }) {
			return Invalid("winner", "names no variation of flag %s: %q", flag, winner)
		}
		h.Flags[i].Shipped = winner
		p := *a.Holdout
		p.Shipped = winner
		a.Holdout = &p
		return nil
	})
}

// RemoveHoldoutFlag takes experiment alloc of flag out of holdout key. While
// the holdout's allocation is published (the experiment runs, or a winner
// shipped) that moves the holdout's subjects of this flag: they leave the
// status quo (or the shipped winner) for whatever the rest of the flag
// gives them. It is refused then unless confirm says the caller accepts
// it, and the change's warnings say so.
func (c *Core) RemoveHoldoutFlag(ctx context.Context, env, key, flag, alloc string, confirm bool) (Holdout, Change, error) {
	var moved string
	h, ch, err := c.holdoutEdit(ctx, env, key, flag, alloc, func(h *Holdout, def *Flag, a *Allocation) error {
		i := slices.IndexFunc(h.Flags, func(f HoldoutFlag) bool { return f.Flag == flag && f.Allocation == a.Key })
		if i < 0 || a.Holdout == nil || a.Holdout.Key != key {
			return Errorf(ENOTFOUND, "holdout %s does not cover experiment %s of flag %s", key, a.Key, flag)
		}
		if a.Status == Running || a.Holdout.Shipped != "" {
			state := "is running"
			if a.Status != Running {
				state = "shipped " + a.Holdout.Shipped
			}
			if !confirm {
				return Errorf(ECONFLICT, "experiment %s of flag %s %s: taking it out of holdout %s moves the holdout's subjects of this flag off the status quo; confirm the re-randomization (confirm), or stop the experiment and remove it before shipping", a.Key, flag, state, key)
			}
			moved = fmt.Sprintf("experiment %s left holdout %s while it %s: the holdout's subjects of flag %s now get what the rest of the flag gives them", a.Key, key, state, flag)
		}
		h.Flags = slices.Delete(h.Flags, i, i+1)
		a.Holdout = nil
		return nil
	})
	if err == nil && moved != "" {
		ch.Warnings = append(ch.Warnings, moved)
	}
	return h, ch, err
}

// holdoutEdit changes holdout key and the allocation it covers in one
// transaction, through writeSettings.
func (c *Core) holdoutEdit(ctx context.Context, env, key, flag, alloc string, fn func(*Holdout, *Flag, *Allocation) error) (Holdout, Change, error) {
	if err := require(ctx, ActEdit, env); err != nil {
		return Holdout{}, Change{}, err
	}
	var out Holdout
	var ch Change
	err := c.store.Write(ctx, func(tx Tx) error {
		h, err := tx.Holdout(env, key)
		if err != nil {
			return err
		}
		before := h
		before.Flags = slices.Clone(h.Flags)
		def, err := tx.Flag(flag, true)
		if err != nil {
			return err
		}
		cur, err := tx.Settings(env, flag)
		if err != nil {
			return err
		}
		next := FlagSettings{Environment: env, Flag: flag, Version: cur.Version}
		ch, err = c.writeSettingsWith(ctx, tx, next, func(s *FlagSettings) error {
			if alloc == "" {
				alloc = onlyExperiment(s)
			}
			i, err := findAllocation(s, alloc)
			if err != nil {
				return err
			}
			return fn(&h, &def, &s.Allocations[i])
		}, true)
		if err != nil {
			return err
		}
		if out, err = tx.UpdateHoldout(h); err != nil {
			return err
		}
		return c.audit(ctx, tx, "update", "holdout", key, env, before, out)
	})
	if err == nil {
		c.changed(env, flag)
	}
	return out, ch, err
}

// onlyExperiment names the flag's experiment when it has exactly one.
func onlyExperiment(s *FlagSettings) string {
	key := ""
	for _, a := range s.Allocations {
		if a.Type == Experiment {
			if key != "" {
				return ""
			}
			key = a.Key
		}
	}
	return key
}

func firstWeighted(def *Flag, a *Allocation) string {
	for _, v := range def.Variations {
		for _, w := range a.Weights {
			if w.Variation == v.Key && w.Weight > 0 {
				return v.Key
			}
		}
	}
	return ""
}

// checkHoldoutRemoval refuses a settings change that drops an experiment a
// holdout covers: the holdout would silently stop withholding.
func checkHoldoutRemoval(before, next *FlagSettings) error {
	kept := map[string]bool{}
	for _, a := range next.Allocations {
		if a.Type == Experiment {
			kept[a.Key] = true
		}
	}
	for _, p := range before.Allocations {
		if p.Holdout != nil && !kept[p.Key] {
			return Errorf(ECONFLICT, "experiment %s of flag %s is in holdout %s: it cannot be removed or change type while the holdout covers it", p.Key, next.Flag, p.Holdout.Key)
		}
	}
	return nil
}

// coverNew puts every experiment of next that is new (no allocation of the
// same key was an experiment before) into the environment's global
// holdout, if it has one, inside writeSettings' transaction.
func (c *Core) coverNew(ctx context.Context, tx Tx, def *Flag, before, next *FlagSettings) error {
	old := make(map[string]bool, len(before.Allocations))
	for _, a := range before.Allocations {
		old[a.Key] = a.Type == Experiment
	}
	var fresh []int
	for i, a := range next.Allocations {
		if a.Type == Experiment && a.Holdout == nil && !old[a.Key] {
			fresh = append(fresh, i)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	all, err := tx.Holdouts(next.Environment)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(all, func(h Holdout) bool { return h.Global })
	if i < 0 {
		return nil
	}
	h := all[i]
	prev := h
	prev.Flags = slices.Clone(h.Flags)
	for _, j := range fresh {
		a := &next.Allocations[j]
		if len(h.Flags) >= MaxHoldoutFlags {
			return Invalid(fmt.Sprintf("allocations[%d]", j), "global holdout %s covers %d experiments; the limit is %d", h.Key, len(h.Flags), MaxHoldoutFlags)
		}
		sq := firstWeighted(def, a)
		h.Flags = append(h.Flags, HoldoutFlag{Flag: next.Flag, Allocation: a.Key, StatusQuo: sq})
		a.Holdout = &HoldoutPart{Key: h.Key, Percent: h.Percent, StatusQuo: sq}
	}
	after, err := tx.UpdateHoldout(h)
	if err != nil {
		return err
	}
	return c.audit(ctx, tx, "update", "holdout", h.Key, next.Environment, prev, after)
}
