package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

var versionField = regexp.MustCompile(`name="version" value="(\d+)"`)

// formVersion is the settings (or flag) version a rendered form carries.
func formVersion(t *testing.T, body string) string {
	t.Helper()
	m := versionField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no version field in:\n%s", body)
	}
	return m[1]
}

func sixVariationFlag(t *testing.T, e *env) {
	t.Helper()
	f := core.Flag{Key: "hero", VariationType: ufc.TypeString}
	for _, k := range []string{"a", "b", "c", "d", "e", "f"} {
		f.Variations = append(f.Variations, core.Variation{Key: k, Value: json.RawMessage(`"` + k + `"`)})
	}
	if _, err := e.core.CreateFlag(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

// The allocation editor, without JavaScript: rows are added and removed by
// submit buttons that render the form again, keeping what was typed; then
// the allocation is saved through the core, edited, moved and removed.
func TestAllocationEditorWithoutJavaScript(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	sixVariationFlag(t, e)
	r := e.get("/flags/hero/allocations/new?env=production&type=targeted")
	want(t, r, 200, `id="add-rule"`, "No rule: every subject.")
	// Switching the type shows its fields, with defaults.
	want(t, e.post("/flags/hero/allocations/new", url.Values{"env": {"production"}, "version": {"0"}, "key": {"x"}, "type": {"experiment"}, "action": {"retype"}}),
		200, `id="weight_f" name="weight_f" value="16.66"`, `id="traffic" name="traffic" value="10"`)
	v := formVersion(t, r.body)
	form := url.Values{"env": {"production"}, "version": {v}, "key": {"vip"}, "type": {"targeted"}, "variation": {"c"}, "rules": {"0"}}
	form.Set("action", "add-rule")
	r = e.post("/flags/hero/allocations/new", form)
	want(t, r, 200, `name="attr_0_0"`, `value="vip"`)
	// Two rules, the first with two conditions.
	form.Set("rules", "1")
	form.Set("conds_0", "1")
	form.Set("attr_0_0", "plan")
	form.Set("op_0_0", "ONE_OF")
	form.Set("value_0_0", "vip, gold")
	form.Set("action", "add-cond:0")
	r = e.post("/flags/hero/allocations/new", form)
	want(t, r, 200, `name="attr_0_1"`, `value="vip, gold"`)
	form.Set("conds_0", "2")
	form.Set("attr_0_1", "age")
	form.Set("op_0_1", "GTE")
	form.Set("value_0_1", "18")
	form.Set("action", "add-rule")
	r = e.post("/flags/hero/allocations/new", form)
	want(t, r, 200, `name="attr_1_0"`, `value="age"`)
	form.Set("rules", "2")
	form.Set("conds_1", "1")
	form.Set("attr_1_0", "country")
	form.Set("op_1_0", "ONE_OF")
	form.Set("value_1_0", "FR")
	// A bad condition is refused next to its row, nothing saved.
	form.Set("op_1_0", "GTE")
	form.Set("value_1_0", "not a number")
	form.Set("action", "save")
	r = e.post("/flags/hero/allocations/new", form)
	want(t, r, http.StatusBadRequest, `id="cond-1-0-error"`)
	if s, _ := e.core.FlagSettings(context.Background(), "production", "hero"); len(s.Allocations) != 0 {
		t.Fatalf("a refused form saved: %+v", s.Allocations)
	}
	form.Set("op_1_0", "ONE_OF")
	form.Set("value_1_0", "FR")
	r = e.post("/flags/hero/allocations/new", form)
	if r.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.status, r.body)
	}
	s, _ := e.core.FlagSettings(context.Background(), "production", "hero")
	if len(s.Allocations) != 1 || len(s.Allocations[0].Rules) != 2 || len(s.Allocations[0].Rules[0].Conditions) != 2 || s.Allocations[0].Variation != "c" {
		t.Fatalf("saved: %+v", s.Allocations)
	}

	// A rollout after it, then moved first; the edit form shows the rules
	// as typed; removing a condition and a schedule saves.
	r = e.get("/flags/hero/allocations/new?env=production&type=rollout")
	r = e.post("/flags/hero/allocations/new", url.Values{"env": {"production"}, "version": {formVersion(t, r.body)}, "key": {"ramp"},
		"type": {"rollout"}, "variation": {"b"}, "percent": {"30"}, "rules": {"0"}, "start": {"2030-01-01T09:00"}, "action": {"save"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("rollout: %d\n%s", r.status, r.body)
	}
	r = e.get("/flags/hero?env=production")
	want(t, r, 200, `id="up-ramp"`, `id="down-vip"`, `id="edit-vip"`)
	r = e.post("/flags/hero/allocations/ramp/move", url.Values{"env": {"production"}, "version": {formVersion(t, r.body)}, "direction": {"up"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("move: %d\n%s", r.status, r.body)
	}
	s, _ = e.core.FlagSettings(context.Background(), "production", "hero")
	if s.Allocations[0].Key != "ramp" {
		t.Fatalf("after move: %+v", s.Allocations)
	}
	r = e.get("/flags/hero/allocations/vip/edit?env=production")
	want(t, r, 200, `value="vip, gold"`, `value="18"`, `value="FR"`)
	edit := url.Values{"env": {"production"}, "version": {formVersion(t, r.body)}, "type": {"targeted"}, "variation": {"d"},
		"rules": {"2"}, "conds_0": {"2"}, "attr_0_0": {"plan"}, "op_0_0": {"ONE_OF"}, "value_0_0": {"vip"},
		"attr_0_1": {"age"}, "op_0_1": {"GTE"}, "value_0_1": {"18"},
		"conds_1": {"1"}, "attr_1_0": {"country"}, "op_1_0": {"ONE_OF"}, "value_1_0": {"FR"}, "action": {"remove-cond:0.1"}}
	r = e.post("/flags/hero/allocations/vip/edit", edit)
	want(t, r, 200)
	if strings.Contains(r.body, `name="attr_0_1"`) || !strings.Contains(r.body, `name="attr_1_0"`) {
		t.Fatalf("remove-cond did not drop exactly that row:\n%s", r.body)
	}
	edit.Set("conds_0", "1")
	edit.Del("attr_0_1")
	edit.Set("action", "save")
	r = e.post("/flags/hero/allocations/vip/edit", edit)
	if r.status != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", r.status, r.body)
	}
	s, _ = e.core.FlagSettings(context.Background(), "production", "hero")
	if a := s.Allocations[1]; a.Variation != "d" || len(a.Rules[0].Conditions) != 1 {
		t.Fatalf("after edit: %+v", a)
	}
	r = e.get("/flags/hero?env=production")
	r = e.post("/flags/hero/allocations/ramp/remove", url.Values{"env": {"production"}, "version": {formVersion(t, r.body)}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.status)
	}
	s, _ = e.core.FlagSettings(context.Background(), "production", "hero")
	if len(s.Allocations) != 1 {
		t.Fatalf("after remove: %+v", s.Allocations)
	}
}

// The definition: a variation row added without JavaScript, tags and an
// owner, and a refusal with the core's reason when a running experiment
// would see a variation's value change.
func TestEditFlagDefinition(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	sixVariationFlag(t, e)
	ctx := context.Background()
	r := e.get("/flags/hero/edit?env=production")
	want(t, r, 200, `name="var_key_6"`)
	form := url.Values{"env": {"production"}, "version": {formVersion(t, r.body)}, "vars": {"7"}, "description": {"the hero banner"},
		"tags": {"home, web"}, "owner": {"growth"}, "action": {"add-var"}}
	for i, k := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		form.Set("var_key_"+string(rune('0'+i)), k)
		form.Set("var_value_"+string(rune('0'+i)), k)
	}
	r = e.post("/flags/hero/edit", form)
	want(t, r, 200, `name="var_key_7"`, `value="growth"`)
	form.Set("action", "save")
	r = e.post("/flags/hero/edit", form)
	if r.status != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", r.status, r.body)
	}
	f, _ := e.core.Flag(ctx, "hero")
	if len(f.Variations) != 7 || strings.Join(f.Tags, ",") != "home,web" || f.Owner != "growth" {
		t.Fatalf("saved %+v", f)
	}
	// The list filters by tag, owner and type.
	want(t, e.get("/flags?env=production&tag=home"), 200, `href="/flags/hero?env=production"`)
	if r := e.get("/flags?env=production&owner=nobody"); strings.Contains(r.body, `href="/flags/hero?env=production"`) {
		t.Fatal("the owner filter let hero through")
	}
	if r := e.get("/flags?env=production&type=BOOLEAN"); strings.Contains(r.body, `href="/flags/hero?env=production"`) {
		t.Fatal("the type filter let hero through")
	}
	// A running experiment assigning b: its value cannot change.
	s, _ := e.core.FlagSettings(ctx, "production", "hero")
	if _, err := e.core.AddAllocation(ctx, "production", "hero", s.Version, core.Allocation{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: 5000,
		Weights: []core.Weight{{Variation: "a", Weight: 5000}, {Variation: "b", Weight: 5000}}}, -1); err != nil {
		t.Fatal(err)
	}
	r = e.get("/flags/hero/edit?env=production")
	form.Set("version", formVersion(t, r.body))
	form.Set("var_value_1", "bee")
	r = e.post("/flags/hero/edit", form)
	want(t, r, http.StatusBadRequest, "running", "Not saved")
	if f, _ := e.core.Flag(ctx, "hero"); string(f.Variations[1].Value) != `"b"` {
		t.Fatalf("refused change saved: %s", f.Variations[1].Value)
	}
}

// Archive (refused with the reason while an experiment runs), restore,
// copy with the diff shown first, create an environment, and the fix of
// "adding an experiment to an existing flag in a second environment".
func TestArchiveCopyEnvironments(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	ctx := context.Background()
	r := e.post("/environments", url.Values{"env": {"production"}, "name": {"staging"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create env: %d\n%s", r.status, r.body)
	}
	want(t, e.post("/environments", url.Values{"env": {"production"}, "name": {"staging"}}), http.StatusConflict, `id="env-name-error"`)
	want(t, e.get("/environments"), 200, "staging", "production")

	newExp := func(env string) resp {
		return e.post("/flags/new", url.Values{"env": {env}, "key": {"checkout"}, "type": {"STRING"}, "traffic": {"10"},
			"var_key_0": {"control"}, "var_weight_0": {"50"}, "var_key_1": {"treatment"}, "var_weight_1": {"50"}})
	}
	if r := newExp("staging"); r.status != http.StatusSeeOther {
		t.Fatalf("new experiment in staging: %d\n%s", r.status, r.body)
	}
	if r := newExp("production"); r.status != http.StatusSeeOther {
		t.Fatalf("the same experiment in production (the flag exists): %d\n%s", r.status, r.body)
	}
	if s, _ := e.core.FlagSettings(ctx, "production", "checkout"); len(s.Allocations) != 1 {
		t.Fatalf("production: %+v", s)
	}

	// A rollout in staging; production gets it by a copy, after the diff.
	st, _ := e.core.FlagSettings(ctx, "staging", "checkout")
	if _, err := e.core.AddAllocation(ctx, "staging", "checkout", st.Version, core.Allocation{Key: "ramp", Type: core.Rollout, Variation: "treatment", Percent: 2000}, -1); err != nil {
		t.Fatal(err)
	}
	r = e.get("/flags/checkout/copy?env=staging&to=production")
	want(t, r, 200, `id="diff"`, "allocation ramp", `id="confirm-copy"`)
	v := formVersion(t, r.body)
	if s, _ := e.core.FlagSettings(ctx, "production", "checkout"); len(s.Allocations) != 1 {
		t.Fatal("showing the diff changed production")
	}
	r = e.post("/flags/checkout/copy", url.Values{"env": {"staging"}, "to": {"production"}, "version": {v}})
	if r.status != http.StatusSeeOther || !strings.Contains(r.loc, "env=production") {
		t.Fatalf("copy: %d %q\n%s", r.status, r.loc, r.body)
	}
	if s, _ := e.core.FlagSettings(ctx, "production", "checkout"); len(s.Allocations) != 2 {
		t.Fatalf("after copy: %+v", s)
	}
	// The same confirmation again is stale: refused, the new diff shown.
	r = e.post("/flags/checkout/copy", url.Values{"env": {"staging"}, "to": {"production"}, "version": {v}})
	want(t, r, http.StatusConflict, "changed since the diff was shown", `id="no-diff"`)

	// Archive: refused while the experiment runs in production.
	s, _ := e.core.FlagSettings(ctx, "production", "checkout")
	if _, err := e.core.SetStatus(ctx, "production", "checkout", "checkout", s.Version, core.Running); err != nil {
		t.Fatal(err)
	}
	f, _ := e.core.Flag(ctx, "checkout")
	fv := url.Values{"env": {"production"}, "flag_version": {jsonInt(f.Version)}}
	want(t, e.post("/flags/checkout/archive", fv), http.StatusConflict, "stop it before archiving")
	s, _ = e.core.FlagSettings(ctx, "production", "checkout")
	e.core.SetStatus(ctx, "production", "checkout", "checkout", s.Version, core.Stopped)
	if r := e.post("/flags/checkout/archive", fv); r.status != http.StatusSeeOther {
		t.Fatalf("archive: %d\n%s", r.status, r.body)
	}
	if e.cache.Environment("production").FlagJSON("checkout") != nil {
		t.Fatal("an archived flag is still published")
	}
	if r := e.get("/flags?env=production"); strings.Contains(r.body, `href="/flags/checkout?env=production"`) {
		t.Fatal("the list shows an archived flag unasked")
	}
	want(t, e.get("/flags?env=production&status=ARCHIVED"), 200, `href="/flags/checkout?env=production"`)
	r = e.get("/flags/checkout?env=production")
	want(t, r, 200, `id="archived"`, `id="restore-flag"`)
	if strings.Contains(r.body, `id="add-experiment"`) || strings.Contains(r.body, `id="edit-checkout"`) {
		t.Fatal("an archived flag's page offers to change its settings")
	}
	f, _ = e.core.Flag(ctx, "checkout")
	if r := e.post("/flags/checkout/restore", url.Values{"env": {"production"}, "flag_version": {jsonInt(f.Version)}}); r.status != http.StatusSeeOther {
		t.Fatalf("restore: %d\n%s", r.status, r.body)
	}
	if e.cache.Environment("production").FlagJSON("checkout") == nil {
		t.Fatal("a restored flag is not published")
	}
	// Delete: only an archived flag, and only with its key typed.
	f, _ = e.core.Flag(ctx, "checkout")
	del := url.Values{"env": {"production"}, "flag_version": {jsonInt(f.Version)}, "confirm": {"checkout"}}
	want(t, e.post("/flags/checkout/delete", del), http.StatusConflict, "archive it first")
	f, _ = e.core.ArchiveFlag(ctx, "checkout", f.Version)
	del.Set("flag_version", jsonInt(f.Version))
	del.Set("confirm", "oops")
	want(t, e.post("/flags/checkout/delete", del), http.StatusBadRequest, "type the flag&#39;s key")
	del.Set("confirm", "checkout")
	if r := e.post("/flags/checkout/delete", del); r.status != http.StatusSeeOther {
		t.Fatalf("delete: %d\n%s", r.status, r.body)
	}
	if _, err := e.core.Flag(ctx, "checkout"); core.ErrorCode(err) != core.ENOTFOUND {
		t.Fatalf("after delete: %v", err)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// The new-experiment form is no longer 4 variations and 4 conditions: its
// buttons add rows, keeping what was typed.
func TestNewExperimentFormGrows(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	want(t, e.get("/flags/new?env=production"), 200, `name="vars" value="4"`, `id="add-var"`, `id="add-cond"`)
	form := url.Values{"env": {"production"}, "key": {"six"}, "type": {"STRING"}, "traffic": {"10"}, "vars": {"4"}, "conds": {"4"}}
	for i, k := range []string{"a", "b", "c", "d"} {
		form.Set("var_key_"+jsonInt(int64(i)), k)
	}
	form.Set("action", "add-var")
	r := e.post("/flags/new", form)
	want(t, r, 200, `name="var_key_4"`, `name="vars" value="5"`, `value="d"`)
	form.Set("vars", "5")
	form.Set("action", "add-var")
	r = e.post("/flags/new", form)
	want(t, r, 200, `name="var_key_5"`)
	form.Set("vars", "6")
	form.Set("action", "add-cond")
	r = e.post("/flags/new", form)
	want(t, r, 200, `name="cond_attr_4"`, `name="conds" value="5"`)
	form.Set("conds", "5")
	for i, k := range []string{"a", "b", "c", "d", "e", "f"} {
		n := jsonInt(int64(i))
		form.Set("var_key_"+n, k)
		form.Set("var_weight_"+n, []string{"20", "20", "20", "20", "10", "10"}[i])
	}
	form.Set("cond_rule_4", "2")
	form.Set("cond_attr_4", "country")
	form.Set("cond_op_4", "ONE_OF")
	form.Set("cond_value_4", "FR")
	form.Set("action", "create")
	if r := e.post("/flags/new", form); r.status != http.StatusSeeOther {
		t.Fatalf("create: %d\n%s", r.status, r.body)
	}
	f, _ := e.core.Flag(context.Background(), "six")
	s, _ := e.core.FlagSettings(context.Background(), "production", "six")
	if len(f.Variations) != 6 || len(s.Allocations[0].Weights) != 6 || len(s.Allocations[0].Rules) != 1 {
		t.Fatalf("created %+v with %+v", f, s.Allocations)
	}
}
