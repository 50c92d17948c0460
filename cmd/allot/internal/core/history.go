package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxHistoryEntries bounds AllocationHistory: the audit entries of one flag
// in one environment it reads, newest first.
const MaxHistoryEntries = 500

// AllocationEvent is one audited change that touched an allocation (or
// turned its flag on or off): when, who, and the allocation before and
// after it.
type AllocationEvent struct {
	AuditID int64     `json:"auditId"`
	At      time.Time `json:"at"`
	Actor   string    `json:"actor"`
	// Kinds says what changed, in this order: added, removed, started,
	// stopped, status (another status change), traffic, weights, rules,
	// schedule, enabled, disabled (the flag in that environment).
	Kinds []string `json:"kinds"`
	// Before and After are the allocation around the change; nil where it
	// did not exist.
	Before *Allocation `json:"before,omitempty"`
	After  *Allocation `json:"after,omitempty"`
}

// AllocationHistory is an allocation's audited changes, oldest first.
type AllocationHistory struct {
	Events []AllocationEvent `json:"events"`
	// Complete is false when older changes exist that were not read (the
	// bound was reached) or could not be replayed.
	Complete bool `json:"complete"`
}

// AllocationHistory returns the audited changes of allocation alloc of
// flag in env, from the audit log: at most MaxHistoryEntries entries of the
// flag in env, newest first, back to the flag's creation.
//
// An update's audit entry keeps only the paths that changed
// ("allocations[2].traffic"), by position. To know which allocation a path
// was, the history starts from the current settings and undoes the entries
// one by one, newest first, so each entry's settings before and after are
// known whole.
func (c *Core) AllocationHistory(ctx context.Context, env, flag, alloc string) (AllocationHistory, error) {
	var h AllocationHistory
	err := c.store.Read(ctx, func(tx Tx) error {
		if _, err := tx.Environment(env); err != nil {
			return err
		}
		if _, err := tx.Flag(flag, false); err != nil {
			return err
		}
		cur, err := tx.Settings(env, flag)
		if err != nil {
			return err
		}
		entries, err := tx.FlagAudit(flag, env, MaxHistoryEntries, MaxAuditPageBytes)
		if err != nil {
			return err
		}
		h = replayHistory(cur, entries, alloc, MaxHistoryEntries)
		return nil
	})
	return h, err
}

// replayHistory walks entries (newest first) back from the settings cur,
// collecting the changes to alloc, oldest first in the result.
func replayHistory(cur FlagSettings, entries []AuditEntry, alloc string, limit int) AllocationHistory {
	h := AllocationHistory{Events: []AllocationEvent{}}
	raw, err := json.Marshal(cur)
	if err != nil {
		return h
	}
	var after any
	if json.Unmarshal(raw, &after) != nil {
		return h
	}
	state := allocationState{Enabled: cur.Enabled}
	if i := slices.IndexFunc(cur.Allocations, func(a Allocation) bool { return a.Key == alloc }); i >= 0 {
		state.Alloc = &cur.Allocations[i]
	}
	// Complete once the flag's creation is reached: every settings change
	// since is an entry (writeSettings audits each one).
	complete := false
	for i, e := range entries {
		if i >= limit {
			break
		}
		if e.Entity == "flag" {
			if e.Action == "create" {
				complete = true
				break
			}
			continue
		}
		if e.Entity != "flag_settings" || e.Action != "update" {
			continue
		}
		// undo changes the document in place: the one after this entry
		// is not needed any more.
		before, relevant, err := undo(after, e.Before, e.After)
		if err != nil {
			break
		}
		// Only a change to the allocations or to enabled can be an event;
		// then only the allocation itself is decoded (a flag's other
		// allocations may hold long targeting lists).
		if relevant {
			b, err := stateOf(before, alloc)
			if err != nil {
				break
			}
			if ev, ok := allocationEvent(&b, &state); ok {
				ev.AuditID, ev.At, ev.Actor = e.ID, e.At, e.Actor
				h.Events = append(h.Events, ev)
			}
			state = b
		}
		after = before
	}
	slices.Reverse(h.Events)
	h.Complete = complete
	return h
}

// allocationState is what a history compares of the settings: whether the
// flag is on, and the allocation (nil where absent).
type allocationState struct {
	Enabled bool
	Alloc   *Allocation
}

// stateOf reads the allocationState out of a settings document.
func stateOf(doc any, alloc string) (allocationState, error) {
	var st allocationState
	m, ok := doc.(map[string]any)
	if !ok {
		return st, fmt.Errorf("settings are not an object")
	}
	st.Enabled, _ = m["enabled"].(bool)
	list, _ := m["allocations"].([]any)
	for _, x := range list {
		if a, ok := x.(map[string]any); ok && a["key"] == alloc {
			raw, err := json.Marshal(a)
			if err != nil {
				return st, err
			}
			st.Alloc = new(Allocation)
			if err := json.Unmarshal(raw, st.Alloc); err != nil {
				return st, err
			}
			break
		}
	}
	return st, nil
}

// allocationEvent compares the allocation and the flag's state before and
// after a change.
func allocationEvent(before, after *allocationState) (AllocationEvent, bool) {
	b, a := before.Alloc, after.Alloc
	ev := AllocationEvent{Before: b, After: a}
	same := func(x, y any) bool {
		bx, _ := json.Marshal(x)
		by, _ := json.Marshal(y)
		return string(bx) == string(by)
	}
	switch {
	case b == nil && a == nil:
		return ev, false
	case b == nil:
		ev.Kinds = append(ev.Kinds, "added")
	case a == nil:
		ev.Kinds = append(ev.Kinds, "removed")
	default:
		switch {
		case b.Status == a.Status:
		case a.Status == Running:
			ev.Kinds = append(ev.Kinds, "started")
		case b.Status == Running:
			ev.Kinds = append(ev.Kinds, "stopped")
		default:
			ev.Kinds = append(ev.Kinds, "status")
		}
		if b.Traffic != a.Traffic || b.Percent != a.Percent {
			ev.Kinds = append(ev.Kinds, "traffic")
		}
		if !same(b.Weights, a.Weights) || b.Variation != a.Variation {
			ev.Kinds = append(ev.Kinds, "weights")
		}
		if !same(b.Rules, a.Rules) {
			ev.Kinds = append(ev.Kinds, "rules")
		}
		if !same(b.StartAt, a.StartAt) || !same(b.EndAt, a.EndAt) {
			ev.Kinds = append(ev.Kinds, "schedule")
		}
	}
	if before.Enabled != after.Enabled {
		if after.Enabled {
			ev.Kinds = append(ev.Kinds, "enabled")
		} else {
			ev.Kinds = append(ev.Kinds, "disabled")
		}
	}
	return ev, len(ev.Kinds) > 0
}

// undo returns the document as it was before an update whose audit entry
// recorded the changed paths' values in before and after (see
// newAuditEntry), and whether any path was under allocations or enabled.
// It changes doc in place.
func undo(doc any, before, after json.RawMessage) (any, bool, error) {
	var b, a map[string]any
	if err := json.Unmarshal(before, &b); err != nil {
		return nil, false, fmt.Errorf("audit entry: before: %w", err)
	}
	if err := json.Unmarshal(after, &a); err != nil {
		return nil, false, fmt.Errorf("audit entry: after: %w", err)
	}
	relevant := false
	for p := range b {
		relevant = relevant || p == "enabled" || strings.HasPrefix(p, "allocations")
	}
	out, err := undoPaths(doc, b, a)
	return out, relevant, err
}

func undoPaths(out any, b, a map[string]any) (any, error) {
	// Whole values first, then set diffs, in path order: a path is never
	// both, and no recorded path lies inside another.
	for _, p := range slices.Sorted(mapKeys(b)) {
		v := b[p]
		if path, ok := strings.CutSuffix(p, " (set)"); ok {
			cur, err := getPath(out, path)
			if err != nil {
				return nil, err
			}
			list, _ := cur.([]any)
			added := map[string]bool{}
			for _, x := range asList(a[p]) {
				if s, ok := x.(string); ok {
					added[s] = true
				}
			}
			var restored []any
			for _, x := range list {
				if s, ok := x.(string); !ok || !added[s] {
					restored = append(restored, x)
				}
			}
			restored = append(restored, asList(v)...)
			if out, err = setPath(out, path, restored); err != nil {
				return nil, err
			}
			continue
		}
		var err error
		if out, err = setPath(out, p, v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// pathStep is one step of an audit path: an object key or a list index.
type pathStep struct {
	key   string
	index int // -1 for a key
}

// parsePath reads an audit path: "allocations[0].weights[1].weight".
func parsePath(p string) ([]pathStep, error) {
	var steps []pathStep
	for _, part := range strings.Split(p, ".") {
		name, rest, _ := strings.Cut(part, "[")
		if name != "" {
			steps = append(steps, pathStep{key: name, index: -1})
		}
		for rest != "" {
			num, after, ok := strings.Cut(rest, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || i < 0 {
				return nil, fmt.Errorf("audit path %q: bad index", p)
			}
			steps = append(steps, pathStep{index: i})
			rest = strings.TrimPrefix(after, "[")
		}
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("audit path %q: empty", p)
	}
	return steps, nil
}

func getPath(doc any, p string) (any, error) {
	steps, err := parsePath(p)
	if err != nil {
		return nil, err
	}
	cur := doc
	for _, s := range steps {
		switch x := cur.(type) {
		case map[string]any:
			if s.index >= 0 {
				return nil, fmt.Errorf("audit path %q: an index into an object", p)
			}
			cur = x[s.key]
		case []any:
			if s.index < 0 || s.index >= len(x) {
				return nil, fmt.Errorf("audit path %q: no such item", p)
			}
			cur = x[s.index]
		default:
			return nil, fmt.Errorf("audit path %q: not in the document", p)
		}
	}
	return cur, nil
}

// setPath sets the value at p in doc (whose containers it changes in
// place) and returns doc. A null value removes an object's key, as a key
// absent on one side of a diff is recorded as null.
func setPath(doc any, p string, v any) (any, error) {
	steps, err := parsePath(p)
	if err != nil {
		return nil, err
	}
	var set func(cur any, steps []pathStep) (any, error)
	set = func(cur any, steps []pathStep) (any, error) {
		s := steps[0]
		last := len(steps) == 1
		switch x := cur.(type) {
		case map[string]any:
			if s.index >= 0 {
				return nil, fmt.Errorf("audit path %q: an index into an object", p)
			}
			if last {
				if v == nil {
					delete(x, s.key)
				} else {
					x[s.key] = v
				}
				return x, nil
			}
			next := x[s.key]
			if next == nil {
				next = map[string]any{}
			}
			n, err := set(next, steps[1:])
			if err != nil {
				return nil, err
			}
			x[s.key] = n
			return x, nil
		case []any:
			if s.index < 0 || s.index >= len(x) {
				return nil, fmt.Errorf("audit path %q: no such item", p)
			}
			if last {
				x[s.index] = v
				return x, nil
			}
			n, err := set(x[s.index], steps[1:])
			if err != nil {
				return nil, err
			}
			x[s.index] = n
			return x, nil
		case nil:
			if s.index >= 0 {
				return nil, fmt.Errorf("audit path %q: not in the document", p)
			}
			return set(map[string]any{}, steps)
		}
		return nil, fmt.Errorf("audit path %q: not in the document", p)
	}
	return set(doc, steps)
}

func weightsText(ws []Weight) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, w.Variation+" "+percentText(w.Weight))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " / ")
}

// Describe says what the change did to the allocation, in a line the web
// UI's timeline and the CLI print: "Traffic 10 % → 30 %; Flag turned on".
func (e *AllocationEvent) Describe() string {
	var parts []string
	for _, k := range e.Kinds {
		switch k {
		case "added":
			a := e.After
			if a.Type == Experiment {
				parts = append(parts, fmt.Sprintf("Created (%s, traffic %s, weights %s)", a.Status, percentText(a.Traffic), weightsText(a.Weights)))
			} else {
				parts = append(parts, "Created")
			}
		case "removed":
			parts = append(parts, "Removed")
		case "started":
			parts = append(parts, "Started")
		case "stopped":
			parts = append(parts, "Stopped")
		case "status":
			parts = append(parts, fmt.Sprintf("Status %s → %s", e.Before.Status, e.After.Status))
		case "traffic":
			if e.After.Type == Experiment {
				parts = append(parts, fmt.Sprintf("Traffic %s → %s", percentText(e.Before.Traffic), percentText(e.After.Traffic)))
			} else {
				parts = append(parts, fmt.Sprintf("Share %s → %s", percentText(e.Before.Percent), percentText(e.After.Percent)))
			}
		case "weights":
			if e.After.Type == Experiment {
				parts = append(parts, fmt.Sprintf("Weights %s → %s (re-randomized)", weightsText(e.Before.Weights), weightsText(e.After.Weights)))
			} else {
				parts = append(parts, fmt.Sprintf("Variation %s → %s", e.Before.Variation, e.After.Variation))
			}
		case "rules":
			parts = append(parts, "Targeting rules changed")
		case "schedule":
			parts = append(parts, "Schedule changed")
		case "enabled":
			parts = append(parts, "Flag turned on")
		case "disabled":
			parts = append(parts, "Flag turned off")
		}
	}
	return strings.Join(parts, "; ")
}

// percentText prints basis points as a percentage: 1250 is "12.5 %".
func percentText(p Percent) string {
	return strconv.FormatFloat(float64(p)/100, 'f', -1, 64) + " %"
}
