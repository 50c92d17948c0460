package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/internal/ufc"
)

// BenchmarkSummaryAtScale times an experiment's summary where it is read:
// the store call, the API endpoint and the web UI's flag page (which shows
// the summary and the SRM check), over real HTTP on loopback, against one
// allocation of N rows (ALLOT_SCALE_ROWS, comma-separated; default 1000000)
// in each dialect (ALLOT_SCALE_DIALECTS; default sqlite). The rows and their
// aggregates are seeded straight in SQL (seedScale), since ingesting 100 M
// events through the handler would take hours here; the test
// TestSeedScaleMatchesRebuild checks that the seeded aggregates are the
// ones a rebuild computes from the seeded rows.
func BenchmarkSummaryAtScale(b *testing.B) {
	sizes := []int{1_000_000}
	if v := os.Getenv("ALLOT_SCALE_ROWS"); v != "" {
		sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(s)
			if err != nil || n < 2 {
				b.Fatalf("ALLOT_SCALE_ROWS: %q", s)
			}
			sizes = append(sizes, n)
		}
	}
	dialects := []string{"sqlite"}
	if v := os.Getenv("ALLOT_SCALE_DIALECTS"); v != "" {
		dialects = strings.Split(v, ",")
	}
	const token = "allot_admin_scale-bench-0123456789abcdef"
	for _, d := range dialects {
		for _, n := range sizes {
			b.Run(fmt.Sprintf("%s/rows=%d", d, n), func(b *testing.B) {
				dsn := storetest.DSN(b, d)
				start := time.Now()
				seedScale(b, d, dsn, n)
				b.Logf("%s: seeded %d rows and their aggregates in %s", d, n, time.Since(start).Round(time.Second))
				srv, err := Start(context.Background(), Config{Addr: "127.0.0.1:0", DB: dsn, AdminToken: token, PollInterval: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				defer srv.Close(context.Background())
				ctx := context.Background()
				f := store.AssignmentFilter{Environment: "production", FeatureFlag: "checkout", Allocation: "exp"}
				b.Run("store", func(b *testing.B) {
					for b.Loop() {
						s, err := srv.db.SummarizeAssignments(ctx, f)
						if err != nil || s.Assignments != int64(n) {
							b.Fatalf("%d assignments, %v", s.Assignments, err)
						}
					}
				})
				hc := &http.Client{Timeout: 30 * time.Second}
				b.Run("api", func(b *testing.B) {
					u := srv.URL() + "/api/v1/environments/production/flags/checkout/allocations/exp/summary"
					for b.Loop() {
						req, _ := http.NewRequest("GET", u, nil)
						req.Header.Set("Authorization", "Bearer "+token)
						body := get(b, hc, req)
						var s struct{ Assignments int64 }
						if err := json.Unmarshal(body, &s); err != nil || s.Assignments != int64(n) {
							b.Fatalf("summary %s: %v", body, err)
						}
					}
				})
				jar, _ := cookiejar.New(nil)
				web := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
				signIn(b, web, srv.URL(), token)
				b.Run("page", func(b *testing.B) {
					want := fmt.Sprintf("Assignments: %d subjects", n/2) // the summary, as the page prints it
					for b.Loop() {
						req, _ := http.NewRequest("GET", srv.URL()+"/flags/checkout?env=production", nil)
						body := get(b, web, req)
						if !strings.Contains(string(body), want) {
							b.Fatalf("the page does not show %s subjects:\n%s", want, body)
						}
					}
				})
			})
		}
	}
}

func get(b *testing.B, c *http.Client, req *http.Request) []byte {
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("GET %s: %d %v\n%s", req.URL, resp.StatusCode, err, body)
	}
	return body
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func signIn(b *testing.B, c *http.Client, base, token string) {
	req, _ := http.NewRequest("GET", base+"/signin", nil)
	m := csrfField.FindSubmatch(get(b, c, req))
	if m == nil {
		b.Fatal("no CSRF field on the sign-in page")
	}
	resp, err := c.PostForm(base+"/signin", url.Values{"csrf": {string(m[1])}, "token": {token}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		b.Fatalf("sign in: %d", resp.StatusCode)
	}
}

// The seeded table: row i (0 <= i < n) is subject i/2's exposure i%2 to
// checkout/exp, at t0 + i*step (30 days in all); a subject's variation is
// control or treatment by its number, except that one subject in 100 sees
// the other variation on its second exposure.
const scaleDays = 30

var scaleT0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

func scaleStep(n int) int64 { return int64(scaleDays*24*3600*1e6) / int64(n) }

// seedScale creates the experiment and seeds n rows and their aggregates,
// in chunks (each its own transaction, so SQLite's WAL is checkpointed as it
// goes rather than growing by the whole table).
func seedScale(b testing.TB, dialect, dsn string, n int) {
	ctx := core.WithActor(context.Background(), "bench")
	db, err := store.Open(ctx, dsn, nil)
	if err != nil {
		b.Fatal(err)
	}
	ops := storetest.OpsOn(db)
	if _, err := ops.CreateFlag(ctx, core.Flag{Key: "checkout", VariationType: ufc.TypeString, Variations: []core.Variation{
		{Key: "control", Value: json.RawMessage(`"c"`)}, {Key: "treatment", Value: json.RawMessage(`"t"`)}}}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := ops.UpdateFlagSettings(ctx, core.FlagSettings{Flag: "checkout", Environment: "production", Enabled: true,
		Allocations: []core.Allocation{{Key: "exp", Type: core.Experiment, Status: core.Running, Traffic: core.Whole,
			Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "treatment", Weight: 5000}}}}}); err != nil {
		b.Fatal(err)
	}
	db.Close()
	driver, conn := "pgx", dsn
	if dialect == "sqlite" {
		driver, conn = "sqlite", store.SQLiteDSN(dsn)
	}
	raw, err := sql.Open(driver, conn)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	raw.SetMaxOpenConns(1)
	if dialect == "sqlite" { // seeding only: the benchmark's server opens its own connections
		for _, p := range []string{"PRAGMA synchronous = OFF", "PRAGMA cache_size = -262144"} {
			if _, err := raw.Exec(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	step := scaleStep(n)
	// Each statement takes a range [lo, hi) of row numbers; variation
	// and subject as described above.
	var rowsQ, firstQ string
	if dialect == "sqlite" {
		series := `WITH RECURSIVE s(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?) `
		rowsQ = series + `INSERT INTO assignments (event_id, environment, experiment, feature_flag, allocation, variation, subject, subject_attributes, timestamp, sdk_name, sdk_version, received_at)
			SELECT printf('e%011d', i), 'production', 'checkout-exp', 'checkout', 'exp',
				CASE WHEN ((i / 2) + CASE WHEN (i / 2) % 100 = 0 THEN i % 2 ELSE 0 END) % 2 = 0 THEN 'control' ELSE 'treatment' END,
				printf('user-%010d', i / 2), '{}', ? + i * ?, 'go', '1', ? + i * ? FROM s`
		firstQ = series + `INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations)
			SELECT 'production', 'checkout', 'exp', printf('user-%010d', i), CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END,
				printf('e%011d', 2 * i), ? + 2 * i * ?, ? + (2 * i + 1) * ?, 2, CASE WHEN i % 100 = 0 THEN 1 ELSE 0 END FROM s`
	} else {
		rowsQ = `INSERT INTO assignments (event_id, environment, experiment, feature_flag, allocation, variation, subject, subject_attributes, timestamp, sdk_name, sdk_version, received_at)
			SELECT 'e' || lpad(i::text, 11, '0'), 'production', 'checkout-exp', 'checkout', 'exp',
				CASE WHEN ((i / 2) + CASE WHEN (i / 2) % 100 = 0 THEN i % 2 ELSE 0 END) % 2 = 0 THEN 'control' ELSE 'treatment' END,
				'user-' || lpad((i / 2)::text, 10, '0'), '{}', $3 + i * $4, 'go', '1', $5 + i * $6 FROM generate_series($1::bigint, $2::bigint - 1) AS s(i)`
		firstQ = `INSERT INTO first_exposures (environment, feature_flag, allocation, subject, first_variation, first_event_id, first_seen, last_seen, exposures, multiple_variations)
			SELECT 'production', 'checkout', 'exp', 'user-' || lpad(i::text, 10, '0'), CASE WHEN i % 2 = 0 THEN 'control' ELSE 'treatment' END,
				'e' || lpad((2 * i)::text, 11, '0'), $3 + 2 * i * $4, $5 + (2 * i + 1) * $6, 2, CASE WHEN i % 100 = 0 THEN 1 ELSE 0 END
			FROM generate_series($1::bigint, $2::bigint - 1) AS s(i)`
	}
	const chunk = 2_000_000
	for lo := 0; lo < n; lo += chunk {
		if _, err := raw.Exec(rowsQ, lo, min(lo+chunk, n), scaleT0, step, scaleT0, step); err != nil {
			b.Fatalf("seed rows: %v", err)
		}
	}
	subjects := (n + 1) / 2
	for lo := 0; lo < subjects; lo += chunk {
		if _, err := raw.Exec(firstQ, lo, min(lo+chunk, subjects), scaleT0, step, scaleT0, step); err != nil {
			b.Fatalf("seed first exposures: %v", err)
		}
	}
	// The daily counts and the subjects in both variations, computed
	// here from the same rule (a few dozen rows).
	type key struct {
		day       int64
		variation string
	}
	daily := map[key][2]int64{}
	multiple := int64(0)
	const microsPerDay = 86400 * 1_000_000
	variations := [2]string{"control", "treatment"}
	for i := range int64(n) {
		k, e := i/2, i%2
		v := k % 2
		if k%100 == 0 {
			v = (k + e) % 2
		}
		kd := key{(scaleT0 + i*step) / microsPerDay, variations[v]}
		c := daily[kd]
		c[0]++
		if e == 0 {
			c[1]++
			if k%100 == 0 && 2*k+1 < int64(n) {
				multiple++
			}
		}
		daily[kd] = c
	}
	if n%2 == 1 && ((n-1)/2)%100 == 0 { // the last subject has one exposure: not in both
		if _, err := raw.Exec(fix(dialect, `UPDATE first_exposures SET exposures = 1, multiple_variations = 0, last_seen = first_seen WHERE subject = ?`),
			fmt.Sprintf("user-%010d", (n-1)/2)); err != nil {
			b.Fatal(err)
		}
	}
	for k, c := range daily {
		if _, err := raw.Exec(fix(dialect, `INSERT INTO assignment_daily (environment, feature_flag, allocation, variation, day, assignments, first_exposures)
			VALUES ('production', 'checkout', 'exp', ?, ?, ?, ?)`), k.variation, k.day, c[0], c[1]); err != nil {
			b.Fatal(err)
		}
	}
	if multiple > 0 {
		if _, err := raw.Exec(fix(dialect, `INSERT INTO assignment_multiple (environment, feature_flag, allocation, first_variation, subjects)
			VALUES ('production', 'checkout', 'exp', 'control', ?)`), multiple); err != nil {
			b.Fatal(err)
		}
	}
	if dialect == "postgres" {
		if _, err := raw.Exec(`ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
}

// fix numbers the placeholders for PostgreSQL.
func fix(dialect, q string) string {
	if dialect == "sqlite" {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			fmt.Fprintf(&sb, "$%d", n)
			continue
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

// TestSeedScaleMatchesRebuild: the aggregates seedScale writes are those
// the rebuild computes from the rows it seeds, in both dialects, so the
// benchmark reads what ingestion would have built.
func TestSeedScaleMatchesRebuild(t *testing.T) {
	for _, d := range storetest.Dialects() {
		t.Run(d, func(t *testing.T) {
			for _, n := range []int{4_001, 10_000} {
				dsn := storetest.DSN(t, d)
				seedScale(t, d, dsn, n)
				db, err := store.Open(context.Background(), dsn, nil)
				if err != nil {
					t.Fatal(err)
				}
				seeded, err := db.Aggregates(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if err := db.RebuildAggregates(context.Background()); err != nil {
					t.Fatal(err)
				}
				rebuilt, err := db.Aggregates(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				db.Close()
				if len(seeded.FirstExposures) != (n+1)/2 || len(seeded.Multiple) != 1 {
					t.Fatalf("n=%d: seeded %d first exposures, multiple %v", n, len(seeded.FirstExposures), seeded.Multiple)
				}
				for i := range rebuilt.FirstExposures {
					if seeded.FirstExposures[i] != rebuilt.FirstExposures[i] {
						t.Fatalf("n=%d: first exposure %d: seeded %+v, rebuilt %+v", n, i, seeded.FirstExposures[i], rebuilt.FirstExposures[i])
					}
				}
				if fmt.Sprint(seeded.Days) != fmt.Sprint(rebuilt.Days) || fmt.Sprint(seeded.Multiple) != fmt.Sprint(rebuilt.Multiple) {
					t.Fatalf("n=%d: seeded\n%+v %v\nrebuilt\n%+v %v", n, seeded.Days, seeded.Multiple, rebuilt.Days, rebuilt.Multiple)
				}
			}
		})
	}
}
