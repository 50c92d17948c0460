package httpapi_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// GET /api/v1/assignments?table=first-exposures exports one row per subject
// and allocation, in every format; parameters that do not apply are refused.
func TestExportFirstExposures(t *testing.T) {
	db, srv, tok := exportServer(t)
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	row := func(id, alloc, v, subject string, at time.Duration) table.Row {
		return table.Row{EventID: id, Environment: "production", Experiment: "f-" + alloc, FeatureFlag: "f", Allocation: alloc, Variation: v,
			Subject: subject, SubjectAttributes: []byte(`{}`), Timestamp: t0.Add(at), ReceivedAt: t0}
	}
	rows := []table.Row{row("e3", "a", "on", "s, t", time.Hour), row("e1", "a", "off", "s, t", 0), row("e2", "a", "off", "u", time.Minute),
		row("e4", "b", "on", "u", 0)}
	rows[1].Holdout, rows[1].HoldoutVariation = "h", table.HoldoutStatusQuo // the first exposure's holdout columns are exported
	if _, err := db.InsertAssignments(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	resp, body := getWith(t, srv.URL+"/api/v1/assignments?table=first-exposures&allocation=a", tok)
	want := strings.Join(table.FirstExposureColumns, ",") + "\n" +
		`production,f,a,"s, t",off,e1,2026-05-01T12:00:00Z,2026-05-01T13:00:00Z,2,true,h,status_quo` + "\n" +
		`production,f,a,u,off,e2,2026-05-01T12:01:00Z,2026-05-01T12:01:00Z,1,false,,` + "\n"
	if resp.StatusCode != 200 || body != want || !strings.Contains(resp.Header.Get("Content-Disposition"), "first-exposures") {
		t.Fatalf("csv %d %q\nwant %q", resp.StatusCode, body, want)
	}
	resp, body = getWith(t, srv.URL+"/api/v1/assignments?table=first-exposures&format=jsonl", tok)
	if resp.StatusCode != 200 || strings.Count(body, "\n") != 3 ||
		!strings.Contains(body, `{"environment":"production","feature_flag":"f","allocation":"b","subject":"u","first_variation":"on","first_event_id":"e4"`) {
		t.Fatalf("jsonl %d %q", resp.StatusCode, body)
	}
	resp, body = getWith(t, srv.URL+"/api/v1/assignments?table=first-exposures&format=parquet", tok)
	got, err := table.ReadFirstExposuresParquet(strings.NewReader(body), int64(len(body)))
	if resp.StatusCode != 200 || err != nil || len(got) != 3 || got[0].Subject != "s, t" || got[0].Exposures != 2 ||
		!got[0].MultipleVariations || !got[0].LastSeen.Equal(t0.Add(time.Hour)) || got[0].Holdout != "h" || got[0].HoldoutVariation != table.HoldoutStatusQuo {
		t.Fatalf("parquet %d %v %+v", resp.StatusCode, err, got)
	}
	for _, q := range []string{"table=first-exposures&from=2026-05-01", "table=first-exposures&experiment=f-a", "table=subjects", "allocation=a"} {
		if resp, body := getWith(t, srv.URL+"/api/v1/assignments?"+q, tok); resp.StatusCode != 400 {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
		}
	}
}
