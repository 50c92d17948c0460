package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/allot-dev/allot/internal/store"
)

const auditPage = 50

type auditRow struct {
	store.AuditEntry
	BeforeJSON, AfterJSON string
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
	entries, err := u.db.Audit(r.Context(), auditPage, max(before, 0))
	if err != nil {
		return err
	}
	d := auditData{}
	for _, e := range entries {
		d.Rows = append(d.Rows, auditRow{AuditEntry: e, BeforeJSON: indentJSON(e.Before), AfterJSON: indentJSON(e.After)})
	}
	if len(entries) == auditPage {
		d.Older = entries[len(entries)-1].ID
	}
	p.Title, p.Nav, p.Data = "Audit log", "audit", d
	u.render(w, r, "audit", p)
	return nil
}

