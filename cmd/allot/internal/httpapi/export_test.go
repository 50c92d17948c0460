package httpapi_test

import (
	"context"
	"database/sql"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/cmd/allot/internal/publish"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
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
	tok, err := storetest.OpsOn(db).CreateAdminToken(ctx, "t")
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
	var rows []table.Row
	for i := range 20000 {
		rows = append(rows, table.Row{EventID: strings.Repeat("x", 60) + strconv.Itoa(i), Environment: "production", Experiment: "f-a",
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

func exportServer(t *testing.T) (*store.DB, *httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t, "sqlite")
	tok, err := storetest.OpsOn(db).CreateAdminToken(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mount(httpapi.New(db, publish.NewCache(db, nil), nil)))
	t.Cleanup(srv.Close)
	return db, srv, tok.Secret
}

func getWith(t *testing.T, url, token string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestExportFilenameInjection: a flag key in the file name cannot add
// parameters to Content-Disposition: the name is encoded as RFC 6266 says
// (issue 10, item 16).
func TestExportFilenameInjection(t *testing.T) {
	_, srv, tok := exportServer(t)
	resp, _ := getWith(t, srv.URL+"/api/v1/assignments?format=csv&flag="+url.QueryEscape(`x"; filename="evil.sh`), tok)
	cd := resp.Header.Get("Content-Disposition")
	want := `attachment; filename="assignments-x___filename__evil.sh.csv"; filename*=UTF-8''assignments-x%22%3B%20filename%3D%22evil.sh.csv`
	if resp.StatusCode != 200 || cd != want {
		t.Fatalf("%d Content-Disposition %s\nwant %s", resp.StatusCode, cd, want)
	}
	_, params, err := mime.ParseMediaType(cd)
	if err != nil || params["filename"] != `assignments-x"; filename="evil.sh.csv` {
		t.Fatalf("parsed %v %v: the name must read back whole, as one parameter", params, err)
	}
	resp, _ = getWith(t, srv.URL+"/api/v1/assignments?format=parquet&flag=caf%C3%A9", tok)
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="assignments-caf__.parquet"; filename*=UTF-8''assignments-caf%C3%A9.parquet` {
		t.Fatalf("non-ASCII name: %s", cd)
	}
}

// TestSummaryUnknownAllocation: the summary of an allocation that is not
// configured and has no assignments is a 404, not zeros (issue 10, item 18);
// one that has assignments (deleted since) still has its summary.
func TestSummaryUnknownAllocation(t *testing.T) {
	db, srv, tok := exportServer(t)
	ctx := context.Background()
	if _, err := db.InsertAssignments(ctx, []table.Row{{EventID: "e", Environment: "production", Experiment: "f-old", FeatureFlag: "f",
		Allocation: "old", Variation: "v", Subject: "s", Timestamp: time.Now(), ReceivedAt: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/api/v1/environments/production/flags/f/allocations/"
	resp, body := getWith(t, base+"nope/summary", tok)
	if resp.StatusCode != 404 || !strings.Contains(body, "not_found") {
		t.Fatalf("unknown allocation: %d %s", resp.StatusCode, body)
	}
	resp, body = getWith(t, base+"old/summary", tok)
	if resp.StatusCode != 200 || !strings.Contains(body, `"assignments": 1`) {
		t.Fatalf("allocation with assignments: %d %s", resp.StatusCode, body)
	}
}

// TestExportFormats: every format carries the table's columns, the
// holdout columns included.
func TestExportFormats(t *testing.T) {
	db, srv, tok := exportServer(t)
	ts := time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)
	row := table.Row{EventID: "e1", Environment: "production", Experiment: "f-a", FeatureFlag: "f", Allocation: "a", Variation: "v",
		Subject: "s, t", SubjectAttributes: []byte(`{"k":1}`), Timestamp: ts, SDKName: "go", SDKVersion: "1", ReceivedAt: ts,
		Holdout: "q3", HoldoutVariation: table.HoldoutStatusQuo}
	if _, err := db.InsertAssignments(context.Background(), []table.Row{row}); err != nil {
		t.Fatal(err)
	}
	resp, body := getWith(t, srv.URL+"/api/v1/assignments?format=csv", tok)
	want := strings.Join(table.Columns, ",") + "\n" + `e1,production,f-a,f,a,v,"s, t","{""k"":1}",2026-05-01T12:00:00.123456Z,go,1,2026-05-01T12:00:00.123456Z,q3,status_quo` + "\n"
	if resp.StatusCode != 200 || body != want || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv %d %q", resp.StatusCode, body)
	}
	resp, body = getWith(t, srv.URL+"/api/v1/assignments?format=jsonl", tok)
	if resp.StatusCode != 200 || !strings.Contains(body, `"subject":"s, t","subject_attributes":{"k":1},"timestamp":"2026-05-01T12:00:00.123456Z"`) ||
		!strings.Contains(body, `"holdout":"q3","holdout_variation":"status_quo"`) {
		t.Fatalf("jsonl %d %q", resp.StatusCode, body)
	}
	resp, body = getWith(t, srv.URL+"/api/v1/assignments?format=parquet", tok)
	rows, err := table.ReadParquet(strings.NewReader(body), int64(len(body)))
	if resp.StatusCode != 200 || err != nil || len(rows) != 1 || rows[0].Subject != "s, t" || !rows[0].Timestamp.Equal(ts) ||
		rows[0].Holdout != "q3" || rows[0].HoldoutVariation != table.HoldoutStatusQuo {
		t.Fatalf("parquet %d %v %+v", resp.StatusCode, err, rows)
	}
	if resp, _ := getWith(t, srv.URL+"/api/v1/assignments?format=xlsx", tok); resp.StatusCode != 400 {
		t.Fatalf("xlsx: %d", resp.StatusCode)
	}
}
