package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// Import loads a UFC document written elsewhere (Eppo's flags-v1.json, the
// SERVER document of another Allot server) into one environment. Teams
// leaving a hosted service start here, so the one promise is that every
// subject keeps its variation: each allocation is kept exactly as the
// document wrote it, salts, ranges and extraLogging included, as an
// allocation of type Imported, which publishes back to the same UFC.
//
// Import limits (docs/limits.md).
const (
	MaxImportBytes       = 16 << 20 // bytes of one imported document
	MaxImportFlags       = 5000     // flags in one imported document
	MaxSplits            = 1000     // splits of one imported allocation
	MaxShards            = 100      // shards of one split
	MaxRanges            = 1000     // ranges of one shard
	MaxSaltLength        = 256      // bytes of a shard's salt
	MaxExtraLogging      = 100      // extraLogging entries of one split
	MaxExtraLoggingBytes = 1024     // bytes of one extraLogging key or value
)

// Split sends the subjects in all of its shards to one variation: the UFC
// split, as an imported allocation keeps it.
type Split struct {
	Variation    string            `json:"variation"`
	Shards       []Shard           `json:"shards"`
	ExtraLogging map[string]string `json:"extraLogging,omitempty"`
}

// Shard matches the subjects whose hash with Salt, out of Whole shards,
// falls in one of Ranges.
type Shard struct {
	Salt   string  `json:"salt"`
	Ranges []Range `json:"ranges"`
}

// ImportRequest is one import.
type ImportRequest struct {
	Environment string
	// Document is the UFC document's JSON: SERVER, or CLIENT (obfuscated)
	// together with Names.
	Document []byte
	// Names are the plain texts an obfuscated CLIENT document hashed with
	// MD5 (flag keys, attribute names, ONE_OF values): MD5 cannot be
	// reversed, so a hash is resolved by finding the name that produces it.
	// A flag with a hash no name resolves is refused, naming what is
	// missing. Unused for a SERVER document.
	Names []string
	// DryRun checks everything and reports what would happen, and changes
	// nothing.
	DryRun bool
	// KeepFaults imports a flag the engine would refuse only because some
	// subjects get ASSIGNMENT_ERROR (a variation value that does not fit
	// the flag's type, a split to a variation the flag does not have), as
	// the document has it: those subjects keep getting the default, as at
	// the source, and everyone else keeps their variation. Such a flag is
	// listed under Faults; any later change of its settings must fix the
	// faults first. Off, the flag is refused with the reason.
	KeepFaults bool
}

// ImportReport says what an import did (or, on a dry run, would do) to
// each flag of the document. Every flag is in exactly one list.
type ImportReport struct {
	Environment string `json:"environment"`
	Format      string `json:"format"`
	DryRun      bool   `json:"dryRun"`
	// Created: flags that did not exist, created with their settings in
	// the environment.
	Created []string `json:"created"`
	// Updated: existing flags whose settings in the environment were
	// replaced by the document's (and whose definition gained the
	// document's variations it lacked).
	Updated []string `json:"updated"`
	// Unchanged: flags already exactly as the document has them.
	Unchanged []string `json:"unchanged"`
	// Refused: flags left as they were, each with the reason.
	Refused []ImportRefusal `json:"refused"`
	// Faults: the faults kept, one entry each, of flags imported with
	// KeepFaults (the flags are also under Created, Updated or Unchanged).
	Faults []ImportRefusal `json:"faultsKept"`
}

// ImportRefusal is a flag the import left alone, and why.
type ImportRefusal struct {
	Flag string `json:"flag"`
	// Field is the domain field at fault, when there is one.
	Field  string `json:"field,omitempty"`
	Reason string `json:"reason"`
}

// Import loads the flags of a UFC document into an environment, in one
// transaction: flags that pass are created or updated, flags that do not are
// refused with their reason and left as they were. A document that cannot
// be read at all, or is over a limit, is an EINVALID error and changes
// nothing. The audit log gets the usual entry for each flag and settings
// written, and one import entry with the report.
func (c *Core) Import(ctx context.Context, req ImportRequest) (ImportReport, error) {
	rep := ImportReport{Environment: req.Environment, DryRun: req.DryRun,
		Created: []string{}, Updated: []string{}, Unchanged: []string{}, Refused: []ImportRefusal{}, Faults: []ImportRefusal{}}
	if req.Environment == "" {
		return rep, Invalid("environment", "is required")
	}
	// Flag definitions are shared by every environment (edit anywhere);
	// the settings written are the environment's (writeSettings checks it).
	if err := require(ctx, ActEdit, ""); err != nil {
		return rep, err
	}
	if err := require(ctx, ActEdit, req.Environment); err != nil {
		return rep, err
	}
	if len(req.Document) > MaxImportBytes {
		return rep, Invalid("document", "is %d bytes; the limit is %d", len(req.Document), MaxImportBytes)
	}
	doc, err := ufc.Parse(req.Document)
	if err != nil {
		return rep, Invalid("document", "%v", err)
	}
	rep.Format = doc.Format
	if n := len(doc.Flags) + len(doc.Invalid); n > MaxImportFlags {
		return rep, Invalid("document", "has %d flags; the limit is %d", n, MaxImportFlags)
	}
	refuse := func(flag, field, format string, args ...any) {
		rep.Refused = append(rep.Refused, ImportRefusal{Flag: flag, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	for key, err := range doc.Invalid {
		refuse(key, "", "the document's flag cannot be read: %v", err)
	}
	if doc.Format == ufc.FormatClient {
		var unresolved map[string]string
		doc, unresolved = ufc.Deobfuscate(doc, req.Names)
		for key, why := range unresolved {
			refuse(key, "", "%s", why)
		}
	}
	keys := slices.Sorted(maps.Keys(doc.Flags))
	type plan struct {
		def Flag
		set FlagSettings
	}
	plans := make([]plan, 0, len(keys))
	for _, key := range keys {
		def, set, err := fromUFC(key, doc.Flags[key])
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				refuse(key, e.Field, "%s", e.Message)
			} else {
				refuse(key, "", "%v", err)
			}
			continue
		}
		set.Environment = req.Environment
		plans = append(plans, plan{def, set})
	}

	var created, updated []string
	err = c.store.Write(ctx, func(tx Tx) error {
		if _, err := tx.Environment(req.Environment); err != nil {
			return err
		}
		ictx := context.WithValue(ctx, importingKey{}, importMode{keepFaults: req.KeepFaults})
		for _, p := range plans {
			outcome, faults, err := c.importFlag(ictx, tx, p.def, p.set)
			var e *Error
			var late *lateError
			switch {
			case err == nil:
			case errors.As(err, &late):
				// Part of the flag is written: only rolling everything
				// back leaves nothing half imported.
				return fmt.Errorf("importing flag %s: %w", p.def.Key, late.err)
			case errors.As(err, &e) && e.Code == EINVALID:
				// Validation happens before any write of this flag, so a
				// refusal leaves nothing of it behind.
				refuse(p.def.Key, e.Field, "%s", e.Message)
				continue
			default:
				return fmt.Errorf("importing flag %s: %w", p.def.Key, err)
			}
			for _, f := range faults {
				rep.Faults = append(rep.Faults, ImportRefusal{Flag: p.def.Key, Field: f.Field, Reason: f.Reason})
			}
			switch outcome {
			case "created":
				rep.Created = append(rep.Created, p.def.Key)
				created = append(created, p.def.Key)
			case "updated":
				rep.Updated = append(rep.Updated, p.def.Key)
				updated = append(updated, p.def.Key)
			default:
				rep.Unchanged = append(rep.Unchanged, p.def.Key)
			}
		}
		slices.SortFunc(rep.Refused, func(a, b ImportRefusal) int {
			if a.Flag < b.Flag {
				return -1
			}
			if a.Flag > b.Flag {
				return 1
			}
			return 0
		})
		if req.DryRun {
			return errDryRun
		}
		return c.audit(ctx, tx, "import", "environment", req.Environment, req.Environment, nil, importAudit(&rep))
	})
	if errors.Is(err, errDryRun) {
		return rep, nil
	}
	if err != nil {
		return rep, err
	}
	if len(created) > 0 {
		c.changed("", created...)
	}
	if len(updated) > 0 {
		c.changed(req.Environment, updated...)
	}
	return rep, nil
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// importAudit is what the import's audit entry keeps: the report, without
// the lists of unchanged flags, which say nothing.
func importAudit(r *ImportReport) any {
	return map[string]any{"format": r.Format, "created": r.Created, "updated": r.Updated,
		"unchanged": len(r.Unchanged), "refused": r.Refused}
}

type importingKey struct{}

type importMode struct{ keepFaults bool }

// importing reports whether ctx is an import's: only an import may write
// an imported allocation's splits (keepImported).
func importing(ctx context.Context) bool {
	_, ok := ctx.Value(importingKey{}).(importMode)
	return ok
}

// checkIn is check, except in an import with KeepFaults, where faults
// that only make some subjects get ASSIGNMENT_ERROR pass.
func checkIn(ctx context.Context, f *Flag, s *FlagSettings) error {
	if m, ok := ctx.Value(importingKey{}).(importMode); ok && m.keepFaults {
		_, err := checkFaults(f, s)
		return err
	}
	return check(f, s)
}

// fault is one problem the engine found in a flag.
type fault struct{ Field, Reason string }

// checkFaults is check for an import: it returns the faults the engine
// found that only some subjects meet (a variation value that does not fit
// the type, a split to a variation the flag does not have), or the error
// of check if there is any other problem.
func checkFaults(f *Flag, s *FlagSettings) ([]fault, error) {
	cerr := check(f, s)
	if cerr == nil {
		return nil, nil
	}
	w, err := UFCFlag(f, s)
	if err != nil {
		return nil, cerr
	}
	var pe *eval.PublishError
	if !errors.As(eval.CheckFlag(f.Key, w), &pe) || len(pe.Problems) == 0 {
		return nil, cerr
	}
	var out []fault
	for _, p := range pe.Problems {
		value := strings.Contains(p.Path, ".variations.") && strings.HasSuffix(p.Path, ".value")
		split := strings.Contains(p.Path, ".splits[") && strings.HasSuffix(p.Path, ".variationKey")
		if !value && !split {
			return nil, cerr
		}
		field := domainField(f, p.Path)
		if split {
			field = strings.TrimPrefix(p.Path, "flags."+f.Key+".")
			field = strings.TrimSuffix(field, "Key")
		}
		out = append(out, fault{field, p.Reason})
	}
	return out, nil
}

// importFlag writes one flag of an import: it validates everything first
// (so that a refusal writes nothing), then creates the flag or adds the
// variations it lacks, then replaces its settings in the environment through
// writeSettings, the one path for settings. It returns "created", "updated"
// or "unchanged", and the faults kept (KeepFaults).
func (c *Core) importFlag(ctx context.Context, tx Tx, def Flag, set FlagSettings) (string, []fault, error) {
	existing, err := tx.Flag(def.Key, true)
	exists := err == nil
	if err != nil && ErrorCode(err) != ENOTFOUND {
		return "", nil, err
	}
	var cur FlagSettings
	if exists {
		if existing.VariationType != def.VariationType {
			return "", nil, Invalid("variationType", "the flag exists as %s, the document has %s", existing.VariationType, def.VariationType)
		}
		merged, err := mergeVariations(existing, def)
		if err != nil {
			return "", nil, err
		}
		def = merged
		if cur, err = tx.Settings(set.Environment, def.Key); err != nil {
			return "", nil, err
		}
		for _, a := range cur.Allocations {
			if a.Layer != nil || a.Holdout != nil {
				return "", nil, Invalid("allocations", "experiment %s is in a layer or a holdout in %s: take it out before importing over it", a.Key, set.Environment)
			}
		}
	}
	if err := checkFlagWith(&def, true); err != nil {
		return "", nil, err
	}
	if err := checkSettings(&set, &def); err != nil {
		return "", nil, err
	}
	faults, err := checkFaults(&def, &set)
	if err != nil {
		return "", nil, err
	}
	if len(faults) > 0 {
		if m, _ := ctx.Value(importingKey{}).(importMode); !m.keepFaults {
			f := faults[0]
			return "", nil, Invalid(f.Field, "%s; this flag has %d such fault(s), which only the subjects reaching them meet: importing with keep-faults (allot import --keep-faults, the API's keepFaults=true, or the UI's Keep faults box) keeps it as the document has it, and those subjects keep getting the default, as at the source", f.Reason, len(faults))
		}
	}
	if exists && sameSettings(&cur, &set) && len(def.Variations) == len(existing.Variations) {
		return "unchanged", faults, nil
	}
	outcome, err := c.writeImported(ctx, tx, def, set, existing, exists, cur.Version)
	if err != nil {
		return "", nil, &lateError{err}
	}
	return outcome, faults, nil
}

// lateError is an error met after some of a flag was written.
type lateError struct{ err error }

func (e *lateError) Error() string { return e.err.Error() }

// writeImported writes a flag importFlag has validated.
func (c *Core) writeImported(ctx context.Context, tx Tx, def Flag, set FlagSettings, existing Flag, exists bool, version int64) (string, error) {
	outcome := "updated"
	switch {
	case !exists:
		outcome = "created"
		out, err := tx.InsertFlag(def)
		if err != nil {
			return "", err
		}
		if err := tx.Bump(""); err != nil {
			return "", err
		}
		if err := c.audit(ctx, tx, "create", "flag", def.Key, "", nil, out); err != nil {
			return "", err
		}
	case len(def.Variations) != len(existing.Variations):
		def.Version = existing.Version
		out, err := tx.UpdateFlag(def)
		if err != nil {
			return "", err
		}
		if err := tx.Bump(""); err != nil {
			return "", err
		}
		if err := c.audit(ctx, tx, "update", "flag", def.Key, "", existing, out); err != nil {
			return "", err
		}
	}
	set.Version = version
	if _, err := c.writeSettings(ctx, tx, set, nil); err != nil {
		return "", err
	}
	return outcome, nil
}

// mergeVariations adds the document's variations that the existing flag
// lacks. A variation both have must have the same value: other environments
// may assign it, and changing it there is not the import's call.
func mergeVariations(existing, doc Flag) (Flag, error) {
	out := existing
	out.Variations = slices.Clone(existing.Variations)
	have := make(map[string]json.RawMessage, len(existing.Variations))
	for _, v := range existing.Variations {
		have[v.Key] = v.Value
	}
	for i, v := range doc.Variations {
		norm, err := normalizeValue(doc.VariationType, v.Value)
		if err != nil {
			return out, Invalid(fmt.Sprintf("variations[%d].value", i), "%s", err)
		}
		old, ok := have[v.Key]
		if !ok {
			out.Variations = append(out.Variations, Variation{Key: v.Key, Value: norm})
			continue
		}
		if string(old) != string(norm) {
			return out, Invalid(fmt.Sprintf("variations[%d].value", i), "variation %s is %s here and %s in the document; other environments may assign it, so the import does not change it", v.Key, old, norm)
		}
	}
	return out, nil
}

// sameSettings reports whether the stored settings already are what the
// import would write.
func sameSettings(cur, next *FlagSettings) bool {
	if cur.Enabled != next.Enabled || len(cur.Allocations) != len(next.Allocations) {
		return false
	}
	a, err1 := json.Marshal(cur.Allocations)
	b, err2 := json.Marshal(next.Allocations)
	return err1 == nil && err2 == nil && string(a) == string(b)
}

// fromUFC turns one flag of a document into a flag definition and its
// settings, keeping every allocation as the document wrote it. What the
// domain cannot hold without changing someone's variation is refused here
// (a shard count other than Whole, an unreadable date); the rest is judged
// later by the same checks as any other write.
func fromUFC(key string, f *ufc.Flag) (Flag, FlagSettings, error) {
	def := Flag{Key: key, VariationType: f.VariationType, Variations: make([]Variation, 0, len(f.Variations))}
	set := FlagSettings{Flag: key, Enabled: f.Enabled, Allocations: make([]Allocation, 0, len(f.Allocations))}
	if !f.VariationType.Valid() {
		return def, set, Invalid("variationType", "must be one of STRING, INTEGER, NUMERIC, BOOLEAN, JSON, not %q", f.VariationType)
	}
	for i, v := range f.Variations {
		value := v.Value
		if f.VariationType == ufc.TypeJSON {
			// On the wire a JSON value is a string holding JSON (or, in
			// the newer dialect, the object or array itself).
			if s, ok := ufc.DecodeString(v.Value); ok {
				value = json.RawMessage(s)
			}
		}
		if v.Key == "" {
			return def, set, Invalid(fmt.Sprintf("variations[%d].key", i), "is empty")
		}
		def.Variations = append(def.Variations, Variation{Key: v.Key, Value: value})
	}
	if len(f.Allocations) > MaxAllocations {
		return def, set, tooMany("allocations", len(f.Allocations), MaxAllocations)
	}
	for i := range f.Allocations {
		w := &f.Allocations[i]
		field := fmt.Sprintf("allocations[%d]", i)
		doLog := w.DoLog
		a := Allocation{Key: w.Key, Type: Imported, DoLog: &doLog, Splits: make([]Split, 0, len(w.Splits))}
		for _, at := range []struct {
			name string
			text string
			dst  **time.Time
		}{{"startAt", w.StartAt, &a.StartAt}, {"endAt", w.EndAt, &a.EndAt}} {
			if at.text == "" {
				continue
			}
			t, err := time.Parse(time.RFC3339Nano, at.text)
			if err != nil {
				return def, set, Invalid(field+"."+at.name, "%q is not an RFC 3339 time", at.text)
			}
			*at.dst = &t
		}
		for _, r := range w.Rules {
			rule := Rule{Conditions: make([]Condition, len(r.Conditions))}
			for k, cd := range r.Conditions {
				rule.Conditions[k] = Condition{Attribute: cd.Attribute, Operator: cd.Operator, Value: cd.Value}
			}
			a.Rules = append(a.Rules, rule)
		}
		if len(w.Splits) > MaxSplits {
			return def, set, tooMany(field+".splits", len(w.Splits), MaxSplits)
		}
		for j, sp := range w.Splits {
			s := Split{Variation: sp.VariationKey, Shards: make([]Shard, len(sp.Shards))}
			if len(sp.ExtraLogging) > 0 {
				s.ExtraLogging = maps.Clone(sp.ExtraLogging)
			}
			for k, sh := range sp.Shards {
				total := sh.TotalShards
				if total == 0 {
					total = f.TotalShards
				}
				if total != Whole {
					// hash mod another count is another assignment: no
					// rescaling keeps every subject where it was.
					return def, set, Invalid(fmt.Sprintf("%s.splits[%d].shards[%d]", field, j, k), "has totalShards %d; Allot publishes %d, and any other count would move subjects", total, Whole)
				}
				rs := make([]Range, len(sh.Ranges))
				for n, r := range sh.Ranges {
					rs[n] = Range{Start: r.Start, End: r.End}
				}
				s.Shards[k] = Shard{Salt: sh.Salt, Ranges: rs}
			}
			a.Splits = append(a.Splits, s)
		}
		set.Allocations = append(set.Allocations, a)
	}
	return def, set, nil
}

// checkImportedKey checks an imported allocation's key: other services name
// allocations freely ("50/50 split"), and renaming one would change what
// its assignments are logged under, so any short text without control
// characters is kept.
func checkImportedKey(field, key string) error {
	if err := checkText(field, key, MaxKeyLength, true); err != nil {
		return err
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return Invalid(field, "has a control character")
		}
	}
	return nil
}

// checkImported checks what the engine does not of an imported allocation:
// its shape and limits. Whether the splits make a valid flag is the
// engine's call (check).
func checkImported(field string, a *Allocation) error {
	if a.Status != "" || a.Traffic != 0 || len(a.Weights) != 0 || a.Percent != 0 || a.Variation != "" || a.Layer != nil {
		return Invalid(field, "an imported allocation takes rules, dates, doLog and its splits only")
	}
	if len(a.Splits) > MaxSplits {
		return tooMany(field+".splits", len(a.Splits), MaxSplits)
	}
	for j, s := range a.Splits {
		sf := fmt.Sprintf("%s.splits[%d]", field, j)
		if s.Variation == "" {
			return Invalid(sf+".variation", "is required")
		}
		if len(s.Shards) > MaxShards {
			return tooMany(sf+".shards", len(s.Shards), MaxShards)
		}
		for k, sh := range s.Shards {
			hf := fmt.Sprintf("%s.shards[%d]", sf, k)
			if err := checkText(hf+".salt", sh.Salt, MaxSaltLength, false); err != nil {
				return err
			}
			if len(sh.Ranges) > MaxRanges {
				return tooMany(hf+".ranges", len(sh.Ranges), MaxRanges)
			}
			for n, r := range sh.Ranges {
				if r.Start < 0 || r.End > Whole || r.Start > r.End {
					return Invalid(fmt.Sprintf("%s.ranges[%d]", hf, n), "[%d, %d) is not a range within [0, %d)", r.Start, r.End, Whole)
				}
			}
		}
		if len(s.ExtraLogging) > MaxExtraLogging {
			return tooMany(sf+".extraLogging", len(s.ExtraLogging), MaxExtraLogging)
		}
		for k, v := range s.ExtraLogging {
			if checkText(sf+".extraLogging", k, MaxExtraLoggingBytes, true) != nil || checkText(sf+".extraLogging", v, MaxExtraLoggingBytes, false) != nil {
				return Invalid(sf+".extraLogging", "entry %.40q: keys of 1 to %d bytes and values up to %d bytes of UTF-8", k, MaxExtraLoggingBytes, MaxExtraLoggingBytes)
			}
		}
	}
	return nil
}

// keepImported keeps an imported allocation's splits as they were: outside
// an import no one may set or change them (a client cannot choose salts),
// and a new imported allocation can only come from an import.
func keepImported(ctx context.Context, next, prev []Allocation) error {
	if importing(ctx) {
		return nil
	}
	old := make(map[string]*Allocation, len(prev))
	for i := range prev {
		if prev[i].Type == Imported {
			old[prev[i].Key] = &prev[i]
		}
	}
	for i := range next {
		a := &next[i]
		if a.Type != Imported {
			a.Splits = nil
			continue
		}
		p := old[a.Key]
		if p == nil {
			return Invalid(fmt.Sprintf("allocations[%d].type", i), "an imported allocation comes only from allot import: create an experiment, rollout or targeted allocation instead")
		}
		a.Splits = p.Splits
	}
	return nil
}

// importedSplits is an imported allocation's splits as published.
func importedSplits(a *Allocation) []ufc.Split {
	out := make([]ufc.Split, len(a.Splits))
	for i, s := range a.Splits {
		sp := ufc.Split{VariationKey: s.Variation, Shards: make([]ufc.Shard, len(s.Shards)), ExtraLogging: s.ExtraLogging}
		for j, sh := range s.Shards {
			rs := make([]ufc.Range, len(sh.Ranges))
			for k, r := range sh.Ranges {
				rs[k] = ufc.Range{Start: r.Start, End: r.End}
			}
			sp.Shards[j] = ufc.Shard{Salt: sh.Salt, Ranges: rs}
		}
		out[i] = sp
	}
	return out
}
