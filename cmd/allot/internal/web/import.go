package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

// importFormBytes bounds the body of the import form: the document
// (core.MaxImportBytes, which the core checks again) plus room for the
// names file and the form's other fields.
const importFormBytes = core.MaxImportBytes + 1<<20

// importData is what the import page gets: the form's choices and, after
// a submission, the report.
type importData struct {
	DryRun, KeepFaults bool
	Document           string // the uploaded file's name, to say what was read
	Report             *core.ImportReport
	Lists              map[string][]string // the report's flag lists by name, for the template
}

// registerImport adds the import page: the upload form of core.Import, the
// step the API's POST /api/v1/environments/{env}/import and allot import
// also take.
func (u *UI) registerImport(mux *httpx.Routes, a func(string, func(http.ResponseWriter, *http.Request, *page) error)) {
	a("GET /import", u.importForm)
	// The body limit comes before authed, which reads the form for its
	// CSRF token.
	mux.Handle("POST /import", u.limitImport(u.authed(access("POST /import"), u.importDocument)))
}

func (u *UI) importForm(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title, p.Nav, p.Path = "Import", "envs", "/import"
	p.Data = &importData{DryRun: true}
	u.render(w, r, "import", p)
	return nil
}

// limitImport refuses an import form over importFormBytes with a 413 page
// before anything else reads it: at once when Content-Length says so, else
// when reading it crosses the limit. Reading it here (files over 1 MiB go
// to temporary files, removed when the request ends) lets authed find the
// CSRF token in the parsed form.
func (u *UI) limitImport(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tooLarge := func() {
			w.Header().Set("Connection", "close") // the rest of the body is not read
			u.render(w, r, "error", &page{Title: "Too large", status: http.StatusRequestEntityTooLarge,
				Error: fmt.Sprintf("The upload is larger than the limit of %d MiB (the document may be up to %d MiB), so nothing was imported.", importFormBytes>>20, core.MaxImportBytes>>20)})
		}
		if r.ContentLength > importFormBytes {
			tooLarge()
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, importFormBytes)
		err := r.ParseMultipartForm(1 << 20)
		if r.MultipartForm != nil {
			defer r.MultipartForm.RemoveAll()
		}
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			tooLarge()
			return
		}
		// Any other parse error leaves the form empty: authed answers it
		// as a form without its CSRF token, and nothing changes.
		next.ServeHTTP(w, r)
	})
}

func (u *UI) importDocument(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Title, p.Nav, p.Path = "Import", "envs", "/import"
	d := &importData{DryRun: r.PostFormValue("dryRun") != "", KeepFaults: r.PostFormValue("keepFaults") != ""}
	p.Data = d
	fail := func(id, msg string) error {
		p.status = http.StatusBadRequest
		p.Errors = map[string]string{id: msg}
		p.Error = "Please correct the field marked below: " + msg + ". Nothing was imported."
		u.render(w, r, "import", p)
		return nil
	}
	doc, name, err := formFile(r, "document")
	if err != nil {
		return err
	}
	if doc == nil {
		return fail("import-document", "Document: choose the UFC document (JSON) to import")
	}
	d.Document = name
	names, _, err := formFile(r, "names")
	if err != nil {
		return err
	}
	req := core.ImportRequest{Environment: p.Env, Document: doc, DryRun: d.DryRun, KeepFaults: d.KeepFaults}
	// The names file has one name a line, as allot import --names reads it.
	for line := range strings.Lines(string(names)) {
		if s := strings.TrimRight(line, "\r\n"); s != "" {
			req.Names = append(req.Names, s)
		}
	}
	rep, err := u.core.Import(r.Context(), req)
	if err != nil {
		if s := statusOf(err); s == http.StatusInternalServerError || s == http.StatusServiceUnavailable {
			return err
		}
		var e *core.Error
		if errors.As(err, &e) && e.Field == "document" {
			return fail("import-document", "Document: "+e.Message)
		}
		return err
	}
	d.Report = &rep
	d.Lists = map[string][]string{"created": rep.Created, "updated": rep.Updated, "unchanged": rep.Unchanged}
	u.render(w, r, "import", p)
	return nil
}

// formFile reads the file field name of a parsed multipart form: nil when
// none was chosen.
func formFile(r *http.Request, name string) ([]byte, string, error) {
	f, h, err := r.FormFile(name)
	if errors.Is(err, http.ErrMissingFile) || errors.Is(err, http.ErrNotMultipart) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading the uploaded %s: %w", name, err)
	}
	defer f.Close()
	if h.Size == 0 {
		return nil, "", nil
	}
	b, err := io.ReadAll(io.LimitReader(f, importFormBytes))
	if err != nil {
		return nil, "", fmt.Errorf("reading the uploaded %s: %w", name, err)
	}
	return b, h.Filename, nil
}
