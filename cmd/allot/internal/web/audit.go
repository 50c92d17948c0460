package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

const auditPage = 50

type auditRow struct {
	core.AuditEntry
	BeforeJSON, AfterJSON string
	Changes               []string
}

type auditData struct {
	Rows  []auditRow
	Older int64 // the before= of the next page, or 0
}

func indentJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

func (u *UI) auditLog(w http.ResponseWriter, r *http.Request, p *page) error {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	page, err := u.core.Audit(r.Context(), auditPage, max(before, 0))
	if err != nil {
		return err
	}
	entries := page.Entries
	d := auditData{}
	for _, e := range entries {
		row := auditRow{AuditEntry: e, BeforeJSON: indentJSON(e.Before), AfterJSON: indentJSON(e.After)}
		if len(e.Before) > 0 && len(e.After) > 0 {
			row.Changes = changes(e.Before, e.After)
		}
		d.Rows = append(d.Rows, row)
	}
	// A page is bounded by rows and bytes; the core says where the next
	// one starts.
	d.Older = page.Next
	p.Title, p.Nav, p.Data = "Audit log", "audit", d
	u.render(w, r, "audit", p)
	return nil
}

// changes lists what differs between two JSON documents, one line per
// changed value ("allocations[0].traffic: 10 → 100"), skipping timestamps
// and versions, which change every time.
func changes(before, after json.RawMessage) []string {
	var b, a any
	if len(before) > 0 && json.Unmarshal(before, &b) != nil {
		return nil
	}
	if len(after) > 0 && json.Unmarshal(after, &a) != nil {
		return nil
	}
	var out []string
	diffJSON("", b, a, &out)
	if len(out) > 12 {
		out = append(out[:12], fmt.Sprintf("and %d more", len(out)-12))
	}
	return out
}

var boringFields = map[string]bool{"updatedAt": true, "createdAt": true, "version": true}

func diffJSON(path string, b, a any, out *[]string) {
	bm, bok := b.(map[string]any)
	am, aok := a.(map[string]any)
	if bok && aok {
		keys := map[string]bool{}
		for k := range bm {
			keys[k] = true
		}
		for k := range am {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			if boringFields[k] {
				continue
			}
			p := k
			if path != "" {
				p = path + "." + k
			}
			diffJSON(p, bm[k], am[k], out)
		}
		return
	}
	bl, bok := b.([]any)
	al, aok := a.([]any)
	if bok && aok && len(bl) == len(al) {
		for i := range bl {
			diffJSON(fmt.Sprintf("%s[%d]", path, i), bl[i], al[i], out)
		}
		return
	}
	bj, _ := json.Marshal(b)
	aj, _ := json.Marshal(a)
	if string(bj) == string(aj) {
		return
	}
	show := func(v any, j []byte) string {
		if v == nil {
			return "(none)"
		}
		if len(j) > 80 {
			return string(j[:77]) + "…"
		}
		return string(j)
	}
	if path == "" {
		path = "value"
	}
	*out = append(*out, path+": "+show(b, bj)+" → "+show(a, aj))
}
