package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufc"
)

// The flag's whole life in the UI (issue 17): its definition (description,
// tags, owner, variations), allocations of every kind with any number of
// rules and conditions, schedules, order, archive and restore, copying
// settings between environments after a diff, and environments. Every
// change is one core operation; the forms work without JavaScript: "add a
// condition" is a submit button that renders the form again with one more
// row, keeping what was typed.

// action is the submit button pressed: "save" or a row operation such as
// "add-cond:1" or "remove-var:3".
func action(r *http.Request) (verb string, arg []int) {
	a := r.PostFormValue("action")
	verb, rest, _ := strings.Cut(a, ":")
	for part := range strings.SplitSeq(rest, ".") {
		if n, err := strconv.Atoi(part); err == nil && n >= 0 {
			arg = append(arg, n)
		}
	}
	return verb, arg
}

// ---- the definition

type defForm struct {
	Key, Type, Description, Tags, Owner string
	Version                             int64
	Vars                                []varRow
	Archived                            bool
}

func defFormOf(f core.Flag) *defForm {
	d := &defForm{Key: f.Key, Type: string(f.VariationType), Description: f.Description, Tags: strings.Join(f.Tags, ", "),
		Owner: f.Owner, Version: f.Version, Archived: f.ArchivedAt != nil}
	for _, v := range f.Variations {
		d.Vars = append(d.Vars, varRow{Key: v.Key, Value: valueText(f.VariationType, v.Value)})
	}
	return d
}

// valueText is how a variation value is typed in a form: a string as is,
// anything else as JSON.
func valueText(t ufc.VariationType, v json.RawMessage) string {
	if t == ufc.TypeString {
		var s string
		if json.Unmarshal(v, &s) == nil {
			return s
		}
	}
	return string(v)
}

func readDefForm(r *http.Request, f core.Flag) *defForm {
	d := &defForm{Key: f.Key, Type: string(f.VariationType), Description: r.PostFormValue("description"),
		Tags: r.PostFormValue("tags"), Owner: strings.TrimSpace(r.PostFormValue("owner")), Archived: f.ArchivedAt != nil}
	d.Version, _ = strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	n, _ := strconv.Atoi(r.PostFormValue("vars"))
	n = min(max(n, 0), core.MaxVariations)
	for i := range n {
		s := strconv.Itoa(i)
		d.Vars = append(d.Vars, varRow{Key: strings.TrimSpace(r.PostFormValue("var_key_" + s)), Value: r.PostFormValue("var_value_" + s)})
	}
	return d
}

func (d *defForm) build() core.Flag {
	f := core.Flag{Key: d.Key, Description: d.Description, VariationType: ufc.VariationType(d.Type), Owner: d.Owner, Version: d.Version}
	for t := range strings.SplitSeq(d.Tags, ",") {
		if t = strings.TrimSpace(t); t != "" {
			f.Tags = append(f.Tags, t)
		}
	}
	for _, v := range d.Vars {
		if v.Key == "" && strings.TrimSpace(v.Value) == "" {
			continue
		}
		var raw json.RawMessage
		if f.VariationType == ufc.TypeString {
			val := v.Value
			if strings.TrimSpace(val) == "" {
				val = v.Key
			}
			raw, _ = json.Marshal(val)
		} else {
			raw = json.RawMessage(strings.TrimSpace(v.Value))
		}
		f.Variations = append(f.Variations, core.Variation{Key: v.Key, Value: raw})
	}
	return f
}

var reVarField = regexp.MustCompile(`^variations\[(\d+)\]`)

func (d *defForm) fields(name string) (string, string) {
	switch {
	case name == "description":
		return "description", "Description"
	case name == "owner":
		return "owner", "Owner"
	case strings.HasPrefix(name, "tags"):
		return "tags", "Tags"
	case name == "variations":
		return "variations", "Variations"
	}
	if m := reVarField.FindStringSubmatch(name); m != nil {
		// Empty rows are skipped: the n-th variation sent is the n-th
		// non-empty row.
		want, _ := strconv.Atoi(m[1])
		n := 0
		for i, v := range d.Vars {
			if v.Key == "" && strings.TrimSpace(v.Value) == "" {
				continue
			}
			if n == want {
				return fmt.Sprintf("var-%d", i), fmt.Sprintf("Variation %d", i+1)
			}
			n++
		}
	}
	return "variations", "Variations"
}

func (u *UI) editFlagForm(w http.ResponseWriter, r *http.Request, p *page) error {
	f, err := u.core.Flag(r.Context(), r.PathValue("flag"))
	if err != nil {
		return err
	}
	d := defFormOf(f)
	d.Vars = append(d.Vars, varRow{}) // room for one more
	p.Title, p.Nav, p.Data, p.Path = "Edit "+f.Key, "flags", d, "/flags/"+f.Key+"/edit"
	u.render(w, r, "edit", p)
	return nil
}

func (u *UI) editFlag(w http.ResponseWriter, r *http.Request, p *page) error {
	f, err := u.core.Flag(r.Context(), r.PathValue("flag"))
	if err != nil {
		return err
	}
	d := readDefForm(r, f)
	p.Title, p.Nav, p.Data, p.Path = "Edit "+f.Key, "flags", d, "/flags/"+f.Key+"/edit"
	switch verb, arg := action(r); verb {
	case "add-var":
		d.Vars = append(d.Vars, varRow{})
		u.render(w, r, "edit", p)
		return nil
	case "remove-var":
		if len(arg) == 1 && arg[0] < len(d.Vars) {
			d.Vars = slices.Delete(d.Vars, arg[0], arg[0]+1)
		}
		u.render(w, r, "edit", p)
		return nil
	}
	next, err := u.core.UpdateFlag(r.Context(), d.build())
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError || core.ErrorCode(err) == core.ENOTFOUND {
			return err
		}
		if core.ErrorCode(err) == core.ECONFLICT {
			err = core.Errorf(core.ECONFLICT, "someone changed flag %s since you opened this page; open it again and redo your change", f.Key)
		}
		p.fail(err, d.fields)
		u.render(w, r, "edit", p)
		return nil
	}
	u.done(w, r, "/flags/"+next.Key+envQuery(p.Env), fmt.Sprintf("Saved flag %s (every environment).", next.Key))
	return nil
}

// ---- archive and restore

func (u *UI) archiveFlag(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.setArchived(w, r, p, true)
}

func (u *UI) restoreFlag(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.setArchived(w, r, p, false)
}

func (u *UI) setArchived(w http.ResponseWriter, r *http.Request, p *page, archive bool) error {
	key := r.PathValue("flag")
	version, _ := strconv.ParseInt(r.PostFormValue("flag_version"), 10, 64)
	op, msg := u.core.RestoreFlag, "Restored %s: every environment publishes it again with the settings it had."
	if archive {
		op, msg = u.core.ArchiveFlag, "Archived %s: no environment publishes it any more (SDKs get their defaults). Restore it from its page."
	}
	if _, err := op(r.Context(), key, version); err != nil {
		return u.flagFailed(w, r, p, key, err, nil)
	}
	u.done(w, r, "/flags/"+key+envQuery(p.Env), fmt.Sprintf(msg, key))
	return nil
}

// deleteFlag deletes an archived flag for good, with its settings in every
// environment (the audit log keeps its history). Only an archived flag
// offers it: archiving first is the way to see that nothing needs it.
func (u *UI) deleteFlag(w http.ResponseWriter, r *http.Request, p *page) error {
	key := r.PathValue("flag")
	version, _ := strconv.ParseInt(r.PostFormValue("flag_version"), 10, 64)
	f, err := u.core.Flag(r.Context(), key)
	if err != nil {
		return err
	}
	if f.Published() {
		err = core.Errorf(core.ECONFLICT, "flag %s is not archived: archive it first, so that no environment serves it, then delete it", key)
	} else if r.PostFormValue("confirm") != key {
		err = core.Invalid("confirm", "type the flag's key, %s, to delete it for good", key)
	} else {
		err = u.core.DeleteFlag(r.Context(), key, version)
	}
	if err != nil {
		return u.flagFailed(w, r, p, key, err, nil)
	}
	u.done(w, r, "/flags"+envQuery(p.Env), fmt.Sprintf("Deleted flag %s in every environment. The audit log keeps its history.", key))
	return nil
}
