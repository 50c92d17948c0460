package server_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

const adminToken = "allot_admin_assignments-test-0123456789"

func postEvents(t *testing.T, url, key string, events []map[string]any) (int, ingest.Response) {
	t.Helper()
	body, _ := json.Marshal(events)
	req, _ := http.NewRequest("POST", url+"/api/v1/assignments", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out ingest.Response
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestAssignmentTable: events posted with an SDK key land in that key's
// environment, once each, and come back out as CSV and JSON lines.
func TestAssignmentTable(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			s := start(t, server.Config{DB: storetest.DSN(t, dialect), AdminToken: adminToken})
			ctx := context.Background()
			c := apiclient.New(s.URL(), adminToken)
			if _, err := c.CreateEnvironment(ctx, "staging"); err != nil {
				t.Fatal(err)
			}
			prod, err := c.CreateSDKKey(ctx, "production", "web")
			if err != nil {
				t.Fatal(err)
			}
			staging, _ := c.CreateSDKKey(ctx, "staging", "web")
			var events []map[string]any
			for i := range 50 {
				events = append(events, map[string]any{
					"eventId": fmt.Sprintf("ev-%d", i), "featureFlag": "checkout", "allocation": "exp",
					"variation": []string{"control", "treatment"}[i%2], "subject": fmt.Sprintf("user-%d", i),
					"subjectAttributes": map[string]any{"country": "US", "n": i},
					"timestamp":         time.Date(2026, 5, 1, 0, i, 0, 0, time.UTC).Format(time.RFC3339),
					"metaData":          map[string]string{"sdkName": "go-allot", "sdkVersion": "0.1.0"},
				})
			}
			if code, r := postEvents(t, s.URL(), prod.Secret, events); code != 200 || r.Accepted != 50 {
				t.Fatalf("post: %d %+v", code, r)
			}
			if code, r := postEvents(t, s.URL(), prod.Secret, events[:10]); code != 200 || r.Duplicates != 10 {
				t.Fatalf("retry: %d %+v", code, r)
			}
			// Event ids are unique across environments (SDKs make UUIDs).
			var stagingEvents []map[string]any
			for _, e := range events[:5] {
				c := map[string]any{}
				for k, v := range e {
					c[k] = v
				}
				c["eventId"] = "staging-" + e["eventId"].(string)
				stagingEvents = append(stagingEvents, c)
			}
			if code, r := postEvents(t, s.URL(), staging.Secret, stagingEvents); code != 200 || r.Accepted != 5 || r.Duplicates != 0 {
				t.Fatalf("staging post: %d %+v", code, r)
			}
			if code, _ := postEvents(t, s.URL(), "allot_sdk_wrong", events[:5]); code != 401 {
				t.Fatalf("bad key: %d", code)
			}
			if code, _ := postEvents(t, s.URL(), adminToken, events[:5]); code != 401 {
				t.Fatalf("an admin token is not an SDK key: %d", code)
			}

			var buf bytes.Buffer
			q := apiclient.ExportQuery{Environment: "production", Flag: "checkout", From: time.Date(2026, 5, 1, 0, 10, 0, 0, time.UTC), To: time.Date(2026, 5, 1, 0, 20, 0, 0, time.UTC)}
			if err := c.ExportAssignments(ctx, q, &buf); err != nil {
				t.Fatal(err)
			}
			rows, err := csv.NewReader(&buf).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 11 || strings.Join(rows[0], ",") != "event_id,environment,experiment,feature_flag,allocation,variation,subject,subject_attributes,timestamp,sdk_name,sdk_version,received_at,holdout,holdout_variation" {
				t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
			}
			if r := rows[1]; r[0] != "ev-10" || r[1] != "production" || r[2] != "checkout-exp" || r[5] != "control" || r[6] != "user-10" || r[7] != `{"country":"US","n":10}` || r[8] != "2026-05-01T00:10:00Z" {
				t.Fatalf("first row %q", r)
			}
			buf.Reset()
			q.Format, q.From, q.To = "jsonl", time.Time{}, time.Time{}
			if err := c.ExportAssignments(ctx, q, &buf); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(buf.String(), "\n"); n != 50 {
				t.Fatalf("jsonl: %d lines, want 50", n)
			}
			buf.Reset()
			q.Format = "parquet"
			if err := c.ExportAssignments(ctx, q, &buf); err != nil {
				t.Fatal(err)
			}
			pq, err := table.ReadParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatalf("parquet: %v", err)
			}
			if len(pq) != 50 || pq[3].EventID != "ev-3" || pq[3].Variation != "treatment" || string(pq[3].SubjectAttributes) != `{"country":"US","n":3}` ||
				!pq[3].Timestamp.Equal(time.Date(2026, 5, 1, 0, 3, 0, 0, time.UTC)) {
				t.Fatalf("parquet rows: %d, row 3 %+v", len(pq), pq[3])
			}
			buf.Reset()
			q.Format = "jsonl"
			q.Environment = "staging"
			c.ExportAssignments(ctx, q, &buf)
			if n := strings.Count(buf.String(), "\n"); n != 5 {
				t.Fatalf("staging: %d lines, want 5", n)
			}
			if err := apiclient.New(s.URL(), "wrong").ExportAssignments(ctx, q, &buf); err == nil || !strings.Contains(err.Error(), "401") {
				t.Fatalf("export without an admin token: %v", err)
			}
			if err := c.ExportAssignments(ctx, apiclient.ExportQuery{Format: "xml"}, &buf); err == nil || !strings.Contains(err.Error(), "format") {
				t.Fatalf("bad format: %v", err)
			}
		})
	}
}

// TestRetention: a server with a retention deletes older events at start.
func TestRetention(t *testing.T) {
	dsn := storetest.DSN(t, "sqlite")
	db, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var rows []table.Row
	for i := range 20 {
		age := time.Duration(i) * 24 * time.Hour // 0 to 19 days old
		rows = append(rows, table.Row{EventID: fmt.Sprint(i), Environment: "production", Experiment: "f-a", FeatureFlag: "f",
			Allocation: "a", Variation: "v", Subject: "s", Timestamp: now.Add(-age), ReceivedAt: now})
	}
	if _, err := db.InsertAssignments(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := start(t, server.Config{DB: dsn, AdminToken: adminToken, Retention: 10*24*time.Hour - time.Hour})
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.DB().CountAssignments(context.Background(), store.AssignmentFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if n == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d events left, want the 10 younger than the retention", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSummaryAndSRM: the summary of a correctly weighted experiment passes
// the sample ratio mismatch check; a skewed one fails it.
func TestSummaryAndSRM(t *testing.T) {
	s := start(t, server.Config{DB: storetest.DSN(t, "sqlite"), AdminToken: adminToken})
	ctx := context.Background()
	c := apiclient.New(s.URL(), adminToken)
	variations := []core.Variation{{Key: "control", Value: json.RawMessage(`"c"`)}, {Key: "treatment", Value: json.RawMessage(`"t"`)}}
	for _, flag := range []string{"fair", "skewed"} {
		if _, err := c.CreateFlag(ctx, core.Flag{Key: flag, VariationType: "STRING", Variations: variations}); err != nil {
			t.Fatal(err)
		}
		_, err := c.PutSettings(ctx, core.FlagSettings{Flag: flag, Environment: "production", Enabled: true, Allocations: []core.Allocation{{
			Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole,
			Weights: []core.Weight{{Variation: "control", Weight: 6000}, {Variation: "treatment", Weight: 4000}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	key, _ := c.CreateSDKKey(ctx, "production", "web")
	// 4,000 subjects per flag: enough for a 55/45 split against 60/40
	// weights to fail the check (chi-square about 42), and quick under -race.
	const subjects = 4000
	controls := map[string]int64{}
	post := func(flag string, share float64) {
		var batch []map[string]any
		for i := range subjects {
			v := "control"
			if float64((i*7919)%10000)/10000 >= share {
				v = "treatment"
			} else {
				controls[flag]++
			}
			batch = append(batch, map[string]any{"eventId": fmt.Sprintf("%s-%d", flag, i), "featureFlag": flag, "allocation": "exp",
				"variation": v, "subject": fmt.Sprintf("u%d", i), "timestamp": "2026-05-01T10:00:00Z"})
			if len(batch) == 2000 {
				if code, r := postEvents(t, s.URL(), key.Secret, batch); code != 200 || r.Accepted != 2000 {
					t.Fatalf("post: %d %+v", code, r)
				}
				batch = nil
			}
		}
	}
	post("fair", 0.6)
	post("skewed", 0.55)
	fair, err := c.AssignmentSummary(ctx, "production", "fair", "exp")
	if err != nil {
		t.Fatal(err)
	}
	if fair.SRM == nil || fair.SRM.Mismatch || fair.Subjects != subjects || fair.Variations["control"] != controls["fair"] || fair.Weights["control"] != 60 {
		t.Fatalf("fair: %+v srm %+v", fair, fair.SRM)
	}
	skewed, _ := c.AssignmentSummary(ctx, "production", "skewed", "exp")
	if skewed.SRM == nil || !skewed.SRM.Mismatch || skewed.SRM.PValue >= 0.001 {
		t.Fatalf("skewed: srm %+v", skewed.SRM)
	}
	// An allocation that is not configured and has no assignments does
	// not exist: 404, not a summary of zeros.
	if _, err := c.AssignmentSummary(ctx, "production", "fair", "no-such-allocation"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown allocation: %v, want a 404", err)
	}
}
