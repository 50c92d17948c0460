package web_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/internal/ufctest"
)

// The import page (issue 17: core.Import from the UI too) over a real
// server on SQLite, with Eppo's flags-v1.json, the document the e2e test
// imports through the API and the CLI.

// upload posts the import form as a browser does (multipart/form-data)
// with the session's CSRF token; files maps a field to its content.
func (e *env) upload(path string, fields map[string]string, files map[string][]byte) resp {
	e.t.Helper()
	return e.uploadChunked(path, fields, files, false)
}

// uploadChunked is upload, with no Content-Length when chunked (as a
// script streaming its upload sends it).
func (e *env) uploadChunked(path string, fields map[string]string, files map[string][]byte, chunked bool) resp {
	e.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("csrf", e.csrf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for k, v := range files {
		w, err := mw.CreateFormFile(k, k+".json")
		if err != nil {
			e.t.Fatal(err)
		}
		w.Write(v)
	}
	mw.Close()
	var rd io.Reader = &body
	if chunked {
		rd = io.MultiReader(&body) // unknown length: sent chunked
	}
	req, _ := http.NewRequest("POST", e.srv.URL+path, rd)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, loc: res.Header.Get("Location"), body: string(b), header: res.Header}
}

// rows counts the rows of the table with id in a page.
func rows(body, id string) int {
	m := regexp.MustCompile(`(?s)<table class="list" id="` + id + `">.*?</table>`).FindString(body)
	return strings.Count(m, "<tr><td")
}

func flagCount(t *testing.T, e *env) int {
	t.Helper()
	fs, err := e.core.Flags(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(fs)
}

func TestImportPage(t *testing.T) {
	e := newEnv(t)
	e.signIn()
	doc := ufctest.Document(t, "flags-v1.json")

	want(t, e.get("/environments"), http.StatusOK, `href="/import?env=production"`)
	r := e.get("/import?env=production")
	want(t, r, http.StatusOK, `enctype="multipart/form-data"`, `name="document"`, `name="names"`,
		`id="import-dry-run" name="dryRun" value="yes" checked`, `id="import-keep-faults" name="keepFaults" value="yes">`)

	// A dry run reports every flag and changes nothing: Eppo's 22 flags,
	// two of them faulty on purpose and refused with field and reason.
	r = e.upload("/import?env=production", map[string]string{"env": "production", "dryRun": "yes"}, map[string][]byte{"document": doc})
	want(t, r, http.StatusOK, "dry run: nothing was changed", "20 created, 0 updated, 0 unchanged, 2 refused",
		"<code>invalid-value-flag</code>", "<code>variations[1].value</code>", "<code>allocations[1].splits[0].variation</code>")
	if n := rows(r.body, "import-created"); n != 20 {
		t.Errorf("%d created rows, want 20", n)
	}
	if n := rows(r.body, "import-refused"); n != 2 {
		t.Errorf("%d refused rows, want 2", n)
	}
	if n := flagCount(t, e); n != 0 {
		t.Fatalf("a dry run left %d flags", n)
	}

	// The real import, keeping the faults, creates all 22.
	r = e.upload("/import?env=production", map[string]string{"env": "production", "keepFaults": "yes"}, map[string][]byte{"document": doc})
	want(t, r, http.StatusOK, "What the import did", "22 created, 0 updated, 0 unchanged, 0 refused, 2 fault(s) kept")
	if n := rows(r.body, "import-faults"); n != 2 {
		t.Errorf("%d fault rows, want 2", n)
	}
	if n := flagCount(t, e); n != 22 {
		t.Fatalf("%d flags after the import, want 22", n)
	}
	set, err := e.core.FlagSettings(context.Background(), core.DefaultEnvironment, "kill-switch")
	if err != nil || len(set.Allocations) == 0 || set.Allocations[0].Type != core.Imported {
		t.Fatalf("kill-switch after the import: %+v, %v", set, err)
	}
	// Again: everything is already there.
	r = e.upload("/import?env=production", map[string]string{"env": "production", "keepFaults": "yes"}, map[string][]byte{"document": doc})
	want(t, r, http.StatusOK, "0 created, 0 updated, 22 unchanged")

	// No document, or one that is not UFC: the field's error, 400.
	want(t, e.upload("/import?env=production", map[string]string{"env": "production"}, nil), http.StatusBadRequest, `id="import-document-error"`)
	want(t, e.upload("/import?env=production", map[string]string{"env": "production"}, map[string][]byte{"document": []byte(`{"flags": 3}`)}),
		http.StatusBadRequest, `id="import-document-error"`, "Nothing was imported")

	// Over the limit: a 413 page, nothing read, nothing changed.
	big := bytes.Repeat([]byte(" "), core.MaxImportBytes+1<<20)
	r = e.upload("/import?env=production", map[string]string{"env": "production"}, map[string][]byte{"document": big})
	want(t, r, http.StatusRequestEntityTooLarge, "larger than the limit", "nothing was imported")
	r = e.uploadChunked("/import?env=production", map[string]string{"env": "production"}, map[string][]byte{"document": big}, true)
	want(t, r, http.StatusRequestEntityTooLarge, "larger than the limit", "nothing was imported")
	// Just under the body limit, the core's own limit on the document.
	r = e.upload("/import?env=production", map[string]string{"env": "production"}, map[string][]byte{"document": big[:core.MaxImportBytes+1]})
	want(t, r, http.StatusBadRequest, "the limit is 16777216")
	if n := flagCount(t, e); n != 22 {
		t.Fatalf("%d flags after refused imports, want 22", n)
	}
}

func TestImportViewer(t *testing.T) {
	e := newEnv(t)
	if _, err := e.core.CreateUser(context.Background(), "vi@example.com", "the viewer's password", core.RoleViewer); err != nil {
		t.Fatal(err)
	}
	v := e.as("vi@example.com", "the viewer's password")
	if r := v.get("/environments"); strings.Contains(r.body, `href="/import`) {
		t.Fatalf("a viewer's environments page links to the import:\n%s", r.body)
	}
	want(t, v.get("/import"), http.StatusForbidden, "this needs the editor role")
	want(t, v.upload("/import?env=production", map[string]string{"env": "production"}, map[string][]byte{"document": ufctest.Document(t, "flags-v1.json")}),
		http.StatusForbidden, "this needs the editor role")
	if n := flagCount(t, e); n != 0 {
		t.Fatalf("a viewer's import left %d flags", n)
	}
}
