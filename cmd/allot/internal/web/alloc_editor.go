package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

// The allocation editor (issue 17): every kind, any number of rules and
// conditions, rows added and removed by the form's own buttons.

// ---- allocations

type condForm struct{ Attr, Op, Value string }

type allocForm struct {
	New                                                  bool
	Flag, Key, Type, Status, Traffic, Percent, Variation string
	Start, End                                           string
	DoLog                                                bool
	Version                                              int64
	Weights                                              []weightView
	Rules                                                [][]condForm
	Variations                                           []string
	Operators                                            []operator
	Types                                                []string
	Layer                                                *core.LayerPart
}

var allocTypes = []string{core.Experiment, core.Rollout, core.Targeted}

// conditionText is how a condition value is typed in a form (the inverse
// of conditionValue).
func conditionText(v json.RawMessage) string {
	var list []string
	if json.Unmarshal(v, &list) == nil {
		return strings.Join(list, ", ")
	}
	return plain(v)
}

func whenText(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04")
}

func allocFormOf(f core.Flag, a core.Allocation, version int64) *allocForm {
	af := &allocForm{Flag: f.Key, Key: a.Key, Type: a.Type, Status: a.Status, Traffic: pctNumber(a.Traffic), Percent: pctNumber(a.Percent),
		Variation: a.Variation, Start: whenText(a.StartAt), End: whenText(a.EndAt), DoLog: a.DoLog != nil && *a.DoLog,
		Version: version, Layer: a.Layer}
	for _, r := range a.Rules {
		var conds []condForm
		for _, c := range r.Conditions {
			conds = append(conds, condForm{Attr: c.Attribute, Op: c.Operator, Value: conditionText(c.Value)})
		}
		af.Rules = append(af.Rules, conds)
	}
	for _, v := range f.Variations {
		w := "0"
		if i := slices.IndexFunc(a.Weights, func(w core.Weight) bool { return w.Variation == v.Key }); i >= 0 {
			w = pctNumber(a.Weights[i].Weight)
		}
		af.Weights = append(af.Weights, weightView{Variation: v.Key, Weight: w})
	}
	af.decorate(f)
	return af
}

func (af *allocForm) decorate(f core.Flag) {
	af.Operators, af.Types = operators, allocTypes
	af.Variations = nil
	for _, v := range f.Variations {
		af.Variations = append(af.Variations, v.Key)
	}
}

// fillDefaults gives the fields of the form's type a starting value when
// they are empty: 10 % of traffic or of subjects, the first variation, and
// weights split evenly.
func (af *allocForm) fillDefaults() {
	if af.Traffic == "" {
		af.Traffic = "10"
	}
	if af.Percent == "" {
		af.Percent = "10"
	}
	if af.Variation == "" && len(af.Variations) > 0 {
		af.Variation = af.Variations[0]
	}
	if af.Status == "" {
		af.Status = core.Draft
	}
	if n := len(af.Weights); n > 0 && !slices.ContainsFunc(af.Weights, func(w weightView) bool { return w.Weight != "" }) {
		share := core.Whole / n
		for i := range af.Weights {
			w := core.Percent(share)
			if i == 0 {
				w += core.Percent(core.Whole - share*n)
			}
			af.Weights[i].Weight = pctNumber(w)
		}
	}
}

func readAllocForm(r *http.Request, f core.Flag) *allocForm {
	v := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	af := &allocForm{Flag: f.Key, Key: v("key"), Type: v("type"), Status: v("status"), Traffic: v("traffic"), Percent: v("percent"),
		Variation: v("variation"), Start: v("start"), End: v("end"), DoLog: r.PostFormValue("dolog") == "yes"}
	af.Version, _ = strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	for _, fv := range f.Variations {
		af.Weights = append(af.Weights, weightView{Variation: fv.Key, Weight: v("weight_" + fv.Key)})
	}
	rules, _ := strconv.Atoi(r.PostFormValue("rules"))
	rules = min(max(rules, 0), core.MaxRules)
	for i := range rules {
		n, _ := strconv.Atoi(r.PostFormValue(fmt.Sprintf("conds_%d", i)))
		n = min(max(n, 0), core.MaxConditions)
		conds := []condForm{}
		for j := range n {
			id := fmt.Sprintf("_%d_%d", i, j)
			conds = append(conds, condForm{Attr: v("attr" + id), Op: v("op" + id), Value: r.PostFormValue("value" + id)})
		}
		af.Rules = append(af.Rules, conds)
	}
	af.decorate(f)
	return af
}

// build turns the form into an allocation; field names in errors are
// those of the allocation at index i, as the core names them.
func (af *allocForm) build(i int) (core.Allocation, error) {
	field := fmt.Sprintf("allocations[%d].", i)
	a := core.Allocation{Key: af.Key, Type: af.Type, Variation: af.Variation, Layer: af.Layer}
	var err error
	switch af.Type {
	case core.Experiment:
		a.Status = af.Status
		if a.Status == "" {
			a.Status = core.Draft
		}
		if a.Traffic, err = parsePercent(field+"traffic", af.Traffic); err != nil {
			return a, err
		}
		a.Variation = ""
		for _, w := range af.Weights {
			if w.Weight == "" {
				continue
			}
			p, err := parsePercent(field+"weights", w.Weight)
			if err != nil {
				return a, core.Invalid(field+"weights", "of %s must be a percentage from 0 to 100", w.Variation)
			}
			if p > 0 {
				a.Weights = append(a.Weights, core.Weight{Variation: w.Variation, Weight: p})
			}
		}
	case core.Rollout:
		if a.Percent, err = parsePercent(field+"percent", af.Percent); err != nil {
			return a, err
		}
	}
	if a.Type != core.Experiment && af.DoLog {
		t := true
		a.DoLog = &t
	}
	for _, conds := range af.Rules {
		var rule core.Rule
		for _, c := range conds {
			rule.Conditions = append(rule.Conditions, core.Condition{Attribute: c.Attr, Operator: c.Op, Value: conditionValue(c.Op, c.Value)})
		}
		a.Rules = append(a.Rules, rule)
	}
	if a.StartAt, err = parseWhen(field+"startAt", af.Start); err != nil {
		return a, err
	}
	if a.EndAt, err = parseWhen(field+"endAt", af.End); err != nil {
		return a, err
	}
	return a, nil
}

var reAllocAny = regexp.MustCompile(`^allocations\[\d+\]\.?(.*)$`)
var reRuleField = regexp.MustCompile(`^rules\[(\d+)\](?:\.conditions\[(\d+)\])?`)

func (af *allocForm) fields(name string) (string, string) {
	m := reAllocAny.FindStringSubmatch(name)
	if m == nil {
		if name == "key" || name == "position" {
			return "key", "Key"
		}
		return "", ""
	}
	rest := m[1]
	if r := reRuleField.FindStringSubmatch(rest); r != nil {
		if r[2] == "" {
			return fmt.Sprintf("rule-%s", r[1]), "Rule " + r[1]
		}
		i, _ := strconv.Atoi(r[1])
		j, _ := strconv.Atoi(r[2])
		return fmt.Sprintf("cond-%d-%d", i, j), fmt.Sprintf("Rule %d, condition %d", i+1, j+1)
	}
	head, _, _ := strings.Cut(rest, ".")
	head, _, _ = strings.Cut(head, "[")
	switch head {
	case "key":
		return "key", "Key"
	case "type":
		return "type", "Type"
	case "status":
		return "status", "Status"
	case "traffic":
		return "traffic", "Traffic allocation"
	case "weights", "layer":
		return "weights", "Weights"
	case "percent":
		return "percent", "Subjects"
	case "variation":
		return "variation", "Variation"
	case "startAt":
		return "start", "Start"
	case "endAt":
		return "end", "End"
	case "rules":
		return "rules", "Rules"
	}
	return "key", "Allocation"
}

// flagAndSettings is a flag and its settings in env: what a page about
// one of its allocations starts from.
func (u *UI) flagAndSettings(ctx context.Context, env, key string) (core.Flag, core.FlagSettings, error) {
	f, err := u.core.Flag(ctx, key)
	if err != nil {
		return core.Flag{}, core.FlagSettings{}, err
	}
	s, err := u.core.FlagSettings(ctx, env, f.Key)
	return f, s, err
}

func (u *UI) newAllocationForm(w http.ResponseWriter, r *http.Request, p *page) error {
	ctx := r.Context()
	f, s, err := u.flagAndSettings(ctx, p.Env, r.PathValue("flag"))
	if err != nil {
		return err
	}
	typ := r.URL.Query().Get("type")
	if !slices.Contains(allocTypes, typ) {
		typ = core.Experiment
	}
	a := core.Allocation{Type: typ, Status: core.Draft, Traffic: 1000, Percent: 1000}
	if len(f.Variations) > 0 {
		a.Variation = f.Variations[0].Key
		share := core.Whole / len(f.Variations)
		for i, v := range f.Variations {
			w := core.Percent(share)
			if i == 0 {
				w += core.Percent(core.Whole - share*len(f.Variations))
			}
			a.Weights = append(a.Weights, core.Weight{Variation: v.Key, Weight: w})
		}
	}
	af := allocFormOf(f, a, s.Version)
	af.New = true
	p.Title, p.Nav, p.Data, p.Path = "New allocation for "+f.Key, "flags", af, "/flags/"+f.Key
	u.render(w, r, "alloc", p)
	return nil
}

func (u *UI) editAllocationForm(w http.ResponseWriter, r *http.Request, p *page) error {
	ctx := r.Context()
	f, s, err := u.flagAndSettings(ctx, p.Env, r.PathValue("flag"))
	if err != nil {
		return err
	}
	a, i := findAllocation(s, r.PathValue("alloc"))
	if i < 0 {
		return core.Errorf(core.ENOTFOUND, "flag %s has no allocation %s in %s", f.Key, r.PathValue("alloc"), p.Env)
	}
	af := allocFormOf(f, a, s.Version)
	p.Title, p.Nav, p.Data, p.Path = "Edit "+a.Key, "flags", af, "/flags/"+f.Key
	u.render(w, r, "alloc", p)
	return nil
}

// saveAllocation serves both the new and the edit form.
func (u *UI) saveAllocation(w http.ResponseWriter, r *http.Request, p *page) error {
	ctx := r.Context()
	f, err := u.core.Flag(ctx, r.PathValue("flag"))
	if err != nil {
		return err
	}
	af := readAllocForm(r, f)
	alloc := r.PathValue("alloc")
	af.New = alloc == ""
	if !af.New {
		af.Key = alloc
	}
	p.Title, p.Nav, p.Data, p.Path = "Edit "+af.Key, "flags", af, "/flags/"+f.Key
	if af.New {
		p.Title = "New allocation for " + f.Key
	}
	verb, arg := action(r)
	switch verb {
	case "add-rule":
		af.Rules = append(af.Rules, []condForm{{Op: ufc.OpOneOf}})
	case "remove-rule":
		if len(arg) == 1 && arg[0] < len(af.Rules) {
			af.Rules = slices.Delete(af.Rules, arg[0], arg[0]+1)
		}
	case "add-cond":
		if len(arg) == 1 && arg[0] < len(af.Rules) {
			af.Rules[arg[0]] = append(af.Rules[arg[0]], condForm{Op: ufc.OpOneOf})
		}
	case "remove-cond":
		if len(arg) == 2 && arg[0] < len(af.Rules) && arg[1] < len(af.Rules[arg[0]]) {
			af.Rules[arg[0]] = slices.Delete(af.Rules[arg[0]], arg[1], arg[1]+1)
			if len(af.Rules[arg[0]]) == 0 {
				af.Rules = slices.Delete(af.Rules, arg[0], arg[0]+1)
			}
		}
	case "retype":
		// The type changed: show its fields, with defaults where the
		// previous type had none.
		af.fillDefaults()
	default:
		return u.commitAllocation(w, r, p, f, af)
	}
	u.render(w, r, "alloc", p)
	return nil
}

func (u *UI) commitAllocation(w http.ResponseWriter, r *http.Request, p *page, f core.Flag, af *allocForm) error {
	ctx := r.Context()
	s, err := u.core.FlagSettings(ctx, p.Env, f.Key)
	if err != nil {
		return err
	}
	var ch core.Change
	if af.New {
		var a core.Allocation
		if a, err = af.build(len(s.Allocations)); err == nil {
			ch, err = u.core.AddAllocation(ctx, p.Env, f.Key, af.Version, a, -1)
		}
	} else {
		old, i := findAllocation(s, af.Key)
		if i < 0 {
			return core.Errorf(core.ENOTFOUND, "flag %s has no allocation %s in %s", f.Key, af.Key, p.Env)
		}
		af.Layer = old.Layer // the layer pages manage layers
		var a core.Allocation
		if a, err = af.build(i); err == nil {
			ch, err = u.core.ReplaceAllocation(ctx, p.Env, f.Key, af.Key, af.Version, a)
		}
	}
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		if core.ErrorCode(err) == core.ECONFLICT && strings.Contains(err.Error(), "version") {
			err = core.Errorf(core.ECONFLICT, "someone changed this flag in %s since you opened the form; open it again and redo your change", p.Env)
		}
		p.fail(err, af.fields)
		u.render(w, r, "alloc", p)
		return nil
	}
	verb := "Saved"
	if af.New {
		verb = "Added"
	}
	a, _ := findAllocation(ch.After, af.Key)
	text := fmt.Sprintf("%s %s %s in %s. %s", verb, a.Type, a.Key, p.Env, describeAllocation(&a))
	for _, warning := range ch.Warnings {
		text += " Note: " + warning + "."
	}
	u.done(w, r, "/flags/"+f.Key+envQuery(p.Env)+"#alloc-"+a.Key, text)
	return nil
}

func (u *UI) moveAllocation(w http.ResponseWriter, r *http.Request, p *page) error {
	alloc := r.PathValue("alloc")
	return u.update(w, r, p, func(ctx context.Context, env, flag string, version int64) (core.Change, error) {
		s, err := u.core.FlagSettings(ctx, env, flag)
		if err != nil {
			return core.Change{}, err
		}
		_, i := findAllocation(s, alloc)
		if r.PostFormValue("direction") == "up" {
			i--
		} else {
			i++
		}
		return u.core.MoveAllocation(ctx, env, flag, alloc, version, i)
	}, func(ch core.Change) string {
		_, i := findAllocation(ch.After, alloc)
		return fmt.Sprintf("Moved %s to position %d of %d in %s: the first allocation that takes a subject decides.", alloc, i+1, len(ch.After.Allocations), ch.After.Environment)
	})
}

func (u *UI) removeAllocation(w http.ResponseWriter, r *http.Request, p *page) error {
	alloc := r.PathValue("alloc")
	return u.update(w, r, p, func(ctx context.Context, env, flag string, version int64) (core.Change, error) {
		return u.core.RemoveAllocation(ctx, env, flag, alloc, version)
	}, func(ch core.Change) string {
		return fmt.Sprintf("Removed %s from %s in %s.", alloc, ch.After.Flag, ch.After.Environment)
	})
}
