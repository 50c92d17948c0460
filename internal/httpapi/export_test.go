package httpapi_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/httpapi"
	"github.com/allot-dev/allot/internal/publish"
	"github.com/allot-dev/allot/internal/store"
	"github.com/allot-dev/allot/internal/store/storetest"
)

// TestExportFailure: an export that fails before sending anything answers
// with a JSON error, not a table with an error glued on. (One that fails
// midway aborts the connection: http.ErrAbortHandler.)
func TestExportFailure(t *testing.T) {
	ctx := context.Background()
	path := storetest.DSN(t, "sqlite")
	db, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tok, err := db.CreateAdminToken(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	cache := publish.NewCache(db, nil)
	srv := httptest.NewServer(mount(httpapi.New(db, cache, nil)))
	defer srv.Close()
	get := func() (*http.Response, string, error) {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/assignments?format=csv", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, string(body), err
	}

	// Many rows, then the table becomes unreadable while the export runs.
	var rows []store.Assignment
	for i := range 20000 {
		rows = append(rows, store.Assignment{EventID: strings.Repeat("x", 60) + strconv.Itoa(i), Environment: "production", Experiment: "f-a",
			FeatureFlag: "f", Allocation: "a", Variation: "v", Subject: "s", Timestamp: time.Unix(int64(i), 0), ReceivedAt: time.Now()})
	}
	if _, err := db.InsertAssignments(ctx, rows); err != nil {
		t.Fatal(err)
	}
	resp, body, err := get()
	if err != nil || resp.StatusCode != 200 || strings.Count(body, "\n") != 20001 {
		t.Fatalf("healthy export: %v %v, %d lines", err, resp, strings.Count(body, "\n"))
	}

	// With the table gone, nothing is sent: a JSON error, no CSV header.
	other, err := sql.Open("sqlite", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.ExecContext(ctx, "ALTER TABLE assignments RENAME TO gone"); err != nil {
		t.Fatal(err)
	}
	resp, body, err = get()
	if err != nil || resp.StatusCode != 500 || !strings.HasPrefix(strings.TrimSpace(body), "{") || strings.Contains(body, "event_id") {
		t.Fatalf("failed export: %v, status %v, body %q", err, resp.StatusCode, body)
	}
}
