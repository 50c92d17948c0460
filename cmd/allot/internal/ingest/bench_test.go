package ingest_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
)

// BenchmarkIngest posts batches of 1,000 events (JSON lines, as the Go SDK
// sends them) through the handler into a real database, concurrently from
// 8 clients per core, and reports events stored per second. Issue target:
// at least 50,000 events/s into SQLite and into PostgreSQL.
func BenchmarkIngest(b *testing.B) {
	for _, dialect := range storetest.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			db := storetest.Open(b, dialect)
			w := ingest.NewWriter(db, ingest.Options{})
			defer w.Close(b.Context())
			h := &ingest.Handler{
				Environment: func(string) (string, bool) { return "production", true },
				Writer:      w, Log: slog.New(slog.DiscardHandler), Now: time.Now,
			}
			const batch = 1000
			var seq atomic.Int64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var body bytes.Buffer
				for pb.Next() {
					body.Reset()
					n := seq.Add(1)
					for i := range batch {
						fmt.Fprintf(&body, `{"eventId":"%d-%d","featureFlag":"checkout","allocation":"exp","variation":"treatment","subject":"user-%d-%d","subjectAttributes":{"country":"US"},"timestamp":"2026-05-01T12:00:00Z","metaData":{"sdkName":"go-allot","sdkVersion":"0.1.0"}}`+"\n", n, i, n, i)
					}
					req := httptest.NewRequest("POST", "/api/v1/assignments", &body)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, rec.Body.String())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkIngestVsCopy compares, on PostgreSQL, events stored per second
// through the handler (JSON lines, validation, the writer's batching, COPY)
// with a floor: the same rows sent by pgx's CopyFrom straight into the
// table over one connection (as the handler's single writer uses one),
// 10,000 per COPY (the writer's largest transaction), no parsing, no
// duplicate handling. Request bodies and floor rows are built from
// templates, so that the clients' own work stays small. Besides events/s,
// each reports the Go process's CPU per event (cpu-ns/event): on a shared
// machine that is steadier than throughput. Run both in one process,
// interleaved (a shell loop over -count 1), and report handler / floor.
// Issue 11.5: at least 0.8.
//
// That raw floor stores less than the handler with aggregates does, so a
// second floor, "full-floor", adds in the same transaction the least the
// aggregates need (see fullFloor below); "full-floor-returning" and
// "handler-returning" are the same pair when every event's subject was
// seen before (a pool of 100,000). Report handler / copy-floor and
// handler / full-floor side by side.
func BenchmarkIngestVsCopy(b *testing.B) {
	if slices.Index(storetest.Dialects(), "postgres") < 0 {
		b.Skip("PostgreSQL is off")
	}
	const batch = 1000
	// Returning subjects come from a pool of poolRequests*batch subjects.
	const poolRequests = 100
	// A request body with an 8-digit placeholder in each event's id and
	// subject, filled per request.
	var tmpl bytes.Buffer
	var holes []int
	for i := range batch {
		fmt.Fprintf(&tmpl, `{"eventId":"`)
		holes = append(holes, tmpl.Len())
		fmt.Fprintf(&tmpl, `00000000-%04d","featureFlag":"checkout","allocation":"exp","variation":"treatment","subject":"user-`, i)
		holes = append(holes, tmpl.Len())
		fmt.Fprintf(&tmpl, `00000000-%04d","subjectAttributes":{"country":"US"},"timestamp":"2026-05-01T12:00:00Z","metaData":{"sdkName":"go-allot","sdkVersion":"0.1.0"}}`+"\n", i)
	}
	// fill writes id into every event id's hole and subject into every
	// subject's hole (holes alternate: id, subject).
	fill := func(dst []byte, id, subject int64) {
		var digits [2][8]byte
		for j, n := range [2]int64{id, subject} {
			for k := 7; k >= 0; k-- {
				digits[j][k] = byte('0' + n%10)
				n /= 10
			}
		}
		for j, h := range holes {
			copy(dst[h:], digits[j%2][:])
		}
	}
	cols := []string{"event_id", "environment", "experiment", "feature_flag", "allocation", "variation", "subject",
		"subject_attributes", "timestamp", "sdk_name", "sdk_version", "received_at"}
	b.Run("copy-floor", func(b *testing.B) {
		dsn := storetest.DSN(b, "postgres")
		db, err := store.Open(b.Context(), dsn, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		conn, err := pgx.Connect(b.Context(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(b.Context())
		const copyBatch = 10 * batch
		ts := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixMicro()
		rows := make([][]any, copyBatch)
		for i := range rows {
			rows[i] = []any{"", "production", "checkout-exp", "checkout", "exp", "treatment", "", `{"country":"US"}`, ts, "go-allot", "0.1.0", int64(0)}
		}
		cpu := processCPU()
		b.ResetTimer()
		for n := 0; b.Loop(); n++ {
			prefix := strconv.Itoa(n) + "-"
			now := time.Now().UnixMicro()
			_, err := conn.CopyFrom(b.Context(), pgx.Identifier{"assignments"}, cols, pgx.CopyFromSlice(copyBatch, func(i int) ([]any, error) {
				r := rows[i]
				id := prefix + strconv.Itoa(i)
				r[0], r[6], r[11] = id, id, now
				return r, nil
			}))
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*copyBatch)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N*copyBatch), "cpu-ns/event")
	})
	// The full floor: the least PostgreSQL must do to store what the handler
	// with aggregates stores, in one transaction per 10,000 events on one
	// connection, into the same schema: COPY of the raw rows; for new
	// subjects, COPY of their first_exposures rows (one per subject), for
	// returning ones, COPY of their last-seen and exposure deltas into
	// first_exposure_touches (one per subject: what the handler itself
	// writes for them); and the per-day counts as one multi-row upsert
	// (here one row: the events share a day and a variation). No lookup,
	// no advisory lock, no parsing: what the rows are is known in advance.
	fullFloor := func(b *testing.B, returning bool) {
		dsn := storetest.DSN(b, "postgres")
		db, err := store.Open(b.Context(), dsn, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		conn, err := pgx.Connect(b.Context(), dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(b.Context())
		const copyBatch = 10 * batch
		ts := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixMicro()
		rows := make([][]any, copyBatch)
		aggRows := make([][]any, copyBatch)
		for i := range rows {
			rows[i] = []any{"", "production", "checkout-exp", "checkout", "exp", "treatment", "", `{"country":"US"}`, ts, "go-allot", "0.1.0", int64(0)}
			if returning {
				aggRows[i] = []any{"production", "checkout", "exp", "", ts, int64(1)}
			} else {
				aggRows[i] = []any{"production", "checkout", "exp", "", "treatment", "", "", ts, ts, int64(1), int64(0), ""}
			}
		}
		aggTable := pgx.Identifier{"first_exposures"}
		aggCols := []string{"environment", "feature_flag", "allocation", "subject", "first_variation", "first_event_id",
			"first_holdout_variation", "first_seen", "last_seen", "exposures", "multiple_variations", "holdout"}
		firsts := int64(copyBatch)
		if returning {
			aggTable = pgx.Identifier{"first_exposure_touches"}
			aggCols = []string{"environment", "feature_flag", "allocation", "subject", "last_seen", "exposures"}
			firsts = 0
		}
		day := ts / (24 * 3600 * 1e6)
		cpu := processCPU()
		b.ResetTimer()
		for n := 0; b.Loop(); n++ {
			prefix := strconv.Itoa(n) + "-"
			now := time.Now().UnixMicro()
			ids := make([]string, copyBatch)
			subjects := make([]string, copyBatch)
			for i := range ids {
				ids[i] = prefix + strconv.Itoa(i)
				subjects[i] = ids[i]
				if returning {
					subjects[i] = "user-" + strconv.Itoa((n*copyBatch+i)%(poolRequests*batch))
				}
			}
			tx, err := conn.Begin(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			_, err = tx.CopyFrom(b.Context(), pgx.Identifier{"assignments"}, cols, pgx.CopyFromSlice(copyBatch, func(i int) ([]any, error) {
				r := rows[i]
				r[0], r[6], r[11] = ids[i], subjects[i], now
				return r, nil
			}))
			if err != nil {
				b.Fatal(err)
			}
			_, err = tx.CopyFrom(b.Context(), aggTable, aggCols, pgx.CopyFromSlice(copyBatch, func(i int) ([]any, error) {
				r := aggRows[i]
				r[3] = subjects[i]
				if !returning {
					r[5] = ids[i]
				}
				return r, nil
			}))
			if err != nil {
				b.Fatal(err)
			}
			_, err = tx.Exec(b.Context(), `INSERT INTO assignment_daily AS d (environment, feature_flag, allocation, variation, holdout_variation, day, assignments, first_exposures)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (environment, feature_flag, allocation, day, variation, holdout_variation) DO UPDATE SET
				assignments = d.assignments + excluded.assignments, first_exposures = d.first_exposures + excluded.first_exposures`,
				"production", "checkout", "exp", "treatment", "", day, int64(copyBatch), firsts)
			if err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(b.Context()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*copyBatch)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N*copyBatch), "cpu-ns/event")
		b.StopTimer()
		if !returning {
			// The floor stores what the handler would: its aggregates are
			// what a rebuild from its raw rows computes. (The returning
			// floor's touches point at subjects it never stored, so it has
			// no such check.)
			checkRebuild(b, db)
		}
	}
	b.Run("full-floor", func(b *testing.B) { fullFloor(b, false) })
	b.Run("full-floor-returning", func(b *testing.B) { fullFloor(b, true) })
	handler := func(b *testing.B, aggregates, returning bool) {
		db := storetest.Open(b, "postgres")
		if !aggregates {
			db.DisableAggregates()
		}
		w := ingest.NewWriter(db, ingest.Options{})
		defer w.Close(b.Context())
		h := &ingest.Handler{
			Environment: func(string) (string, bool) { return "production", true },
			Writer:      w, Log: slog.New(slog.DiscardHandler), Now: time.Now,
		}
		var seq atomic.Int64
		subjectOf := func(n int64) int64 { return n }
		if returning {
			// Seed the pool through the handler before timing, so that
			// every timed event meets a subject already stored.
			body := bytes.Clone(tmpl.Bytes())
			for s := range int64(poolRequests) {
				n := seq.Add(1)
				fill(body, n, s)
				postStored(b, h, body)
			}
			subjectOf = func(n int64) int64 { return n % poolRequests }
		}
		b.SetParallelism(8)
		cpu := processCPU()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			body := bytes.Clone(tmpl.Bytes())
			for pb.Next() {
				n := seq.Add(1)
				fill(body, n, subjectOf(n))
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/assignments", bytes.NewReader(body)))
				if rec.Code != http.StatusOK {
					b.Errorf("status %d: %s", rec.Code, rec.Body.String())
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(processCPU()-cpu)/float64(b.N*batch), "cpu-ns/event")
		b.StopTimer()
		if aggregates {
			checkRebuild(b, db) // the same promise as the full floor's
		}
	}
	// Every event is a new subject here: the aggregates' worst case (a
	// first_exposures row per event). "handler-aggregates-off" is the same
	// path without them, what the 0.8 target was first measured on.
	b.Run("handler", func(b *testing.B) { handler(b, true, false) })
	b.Run("handler-aggregates-off", func(b *testing.B) { handler(b, false, false) })
	b.Run("handler-returning", func(b *testing.B) { handler(b, true, true) })
}

// postStored sends one request body through h and fails b unless it is stored.
func postStored(b *testing.B, h http.Handler, body []byte) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/assignments", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
}

// checkRebuild fails b unless db's aggregates equal what RebuildAggregates
// computes from its raw rows.
func checkRebuild(b *testing.B, db *store.DB) {
	stored, err := db.Aggregates(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if err := db.RebuildAggregates(b.Context()); err != nil {
		b.Fatal(err)
	}
	rebuilt, err := db.Aggregates(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	if len(stored.FirstExposures) == 0 || !reflect.DeepEqual(stored, rebuilt) {
		b.Fatalf("aggregates differ from a rebuild: %d/%d first exposures, days %+v / %+v",
			len(stored.FirstExposures), len(rebuilt.FirstExposures), stored.Days, rebuilt.Days)
	}
}
