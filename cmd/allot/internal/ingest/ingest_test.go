package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/ingest"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/store/storetest"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

const key = "allot_sdk_test-key"

func newServer(t *testing.T, db *store.DB, opts ingest.Options) (*httptest.Server, *ingest.Writer) {
	t.Helper()
	w := ingest.NewWriter(db, opts)
	t.Cleanup(func() { w.Close(context.Background()) })
	h := &ingest.Handler{
		Environment: func(k string) (string, bool) { return "production", k == key },
		Writer:      w,
		Log:         slog.New(slog.DiscardHandler),
		Now:         time.Now,
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, w
}

func event(id, subject string) map[string]any {
	return map[string]any{
		"eventId": id, "featureFlag": "checkout", "allocation": "exp", "experiment": "checkout-exp",
		"variation": "treatment", "subject": subject, "subjectAttributes": map[string]any{"country": "US"},
		"timestamp": "2026-05-01T12:00:00.123Z", "metaData": map[string]any{"sdkName": "go-allot", "sdkVersion": "0.1.0"},
		"extraLogging": map[string]any{"owner": "x"},
	}
}

func post(t *testing.T, url string, body []byte, header map[string]string) (int, ingest.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out ingest.Response
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("response %s: %v", data, err)
		}
	}
	return resp.StatusCode, out, string(data)
}

func bearer() map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

func TestIngest(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			db := storetest.Open(t, dialect)
			srv, _ := newServer(t, db, ingest.Options{})
			ctx := context.Background()

			// A JSON array with two bad events among good ones.
			bad := event("e3", "carol")
			delete(bad, "subject")
			wrong := event("e4", "dave")
			wrong["experiment"] = "something-else"
			batch, _ := json.Marshal([]any{event("e1", "alice"), event("e2", "bob"), bad, wrong, event("e5", "erin"), "not an object"})
			code, resp, body := post(t, srv.URL, batch, bearer())
			if code != 200 || resp.Accepted != 3 || resp.Duplicates != 0 || len(resp.Rejected) != 3 {
				t.Fatalf("first batch: %d %s", code, body)
			}
			if r := resp.Rejected[0]; r.Index != 2 || r.EventID != "e3" || !strings.Contains(r.Error, "subject is required") {
				t.Fatalf("rejection %+v", r)
			}
			if !strings.Contains(resp.Rejected[1].Error, "experiment") {
				t.Fatalf("rejection %+v", resp.Rejected[1])
			}

			// The same events again, as gzipped JSON lines with the key in
			// the query: nothing new is stored.
			var lines bytes.Buffer
			zw := gzip.NewWriter(&lines)
			for _, id := range []string{"e1", "e2", "e5", "e6"} {
				b, _ := json.Marshal(event(id, "s-"+id))
				zw.Write(append(b, '\n'))
			}
			zw.Close()
			code, resp, body = post(t, srv.URL+"?apiKey="+key, lines.Bytes(), map[string]string{"Content-Encoding": "gzip"})
			if code != 200 || resp.Accepted != 4 || resp.Duplicates != 3 {
				t.Fatalf("retry: %d %s", code, body)
			}
			if n, _ := db.CountAssignments(ctx, store.AssignmentFilter{}); n != 4 {
				t.Fatalf("%d rows stored, want 4", n)
			}
			var row table.Row
			db.Assignments(ctx, store.AssignmentFilter{}, func(a *table.Row) error {
				if a.EventID == "e1" {
					row = *a
				}
				return nil
			})
			want := time.Date(2026, 5, 1, 12, 0, 0, 123e6, time.UTC)
			if row.Environment != "production" || row.Experiment != "checkout-exp" || row.Subject != "alice" || !row.Timestamp.Equal(want) ||
				string(row.SubjectAttributes) != `{"country":"US"}` || row.SDKName != "go-allot" || row.ReceivedAt.IsZero() {
				t.Fatalf("stored row %+v", row)
			}
		})
	}
}

// TestIngestHoldout: the holdout columns are filled from extraLogging
// nested (Go, Node) or spread at the top level (Eppo's JavaScript SDKs),
// with all_shipped_variants stored as all_shipped; an event outside a
// holdout, or whose extraLogging is not an object, stores empty columns
// and is not refused; an oversized holdout key is refused.
func TestIngestHoldout(t *testing.T) {
	for _, dialect := range storetest.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			db := storetest.Open(t, dialect)
			srv, _ := newServer(t, db, ingest.Options{})
			ctx := context.Background()
			nested := event("nested", "alice")
			nested["extraLogging"] = map[string]any{"holdoutKey": "q3", "holdoutVariation": "status_quo", "owner": "x"}
			spread := event("spread", "bob")
			delete(spread, "extraLogging")
			spread["holdoutKey"], spread["holdoutVariation"] = "q3", "all_shipped_variants"
			synonym := event("synonym", "carol")
			synonym["extraLogging"] = map[string]any{"holdoutKey": "q3", "holdoutVariation": "all_shipped_variants"}
			plain := event("plain", "dave")
			odd := event("odd", "erin")
			odd["extraLogging"] = "free-form"
			long := event("long", "frank")
			long["holdoutKey"] = strings.Repeat("h", table.MaxKeyBytes+1)
			batch, _ := json.Marshal([]any{nested, spread, synonym, plain, odd, long})
			code, resp, body := post(t, srv.URL, batch, bearer())
			if code != 200 || resp.Accepted != 5 || len(resp.Rejected) != 1 || resp.Rejected[0].EventID != "long" ||
				!strings.Contains(resp.Rejected[0].Error, "holdoutKey is longer") {
				t.Fatalf("batch: %d %s", code, body)
			}
			got := map[string][2]string{}
			db.Assignments(ctx, store.AssignmentFilter{}, func(a *table.Row) error {
				got[a.EventID] = [2]string{a.Holdout, a.HoldoutVariation}
				return nil
			})
			want := map[string][2]string{"nested": {"q3", "status_quo"}, "spread": {"q3", "all_shipped"},
				"synonym": {"q3", "all_shipped"}, "plain": {}, "odd": {}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("stored holdouts %v, want %v", got, want)
			}
		})
	}
}

func TestIngestRefusals(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	srv, w := newServer(t, db, ingest.Options{})
	one, _ := json.Marshal([]any{event("x1", "a")})
	for _, c := range []struct {
		name   string
		body   []byte
		header map[string]string
		code   int
	}{
		{"no key", one, nil, 401},
		{"wrong key", one, map[string]string{"Authorization": "Bearer nope"}, 401},
		{"not json", []byte("<html>"), bearer(), 400},
		{"broken array", []byte(`[{"eventId": "a"`), bearer(), 400},
		{"empty", nil, bearer(), 400},
		{"deflate", one, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": "deflate"}, 415},
		{"fake gzip", one, map[string]string{"Authorization": "Bearer " + key, "Content-Encoding": "gzip"}, 400},
		{"too large", bytes.Repeat([]byte(" "), table.MaxRequestBytes+1), bearer(), 413},
	} {
		code, _, body := post(t, srv.URL, c.body, c.header)
		if code != c.code {
			t.Errorf("%s: %d %q, want %d", c.name, code, body, c.code)
		}
		// Errors are JSON, as everywhere under /api/v1.
		var e struct {
			Error struct{ Code, Field, Message string }
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s: error body %q is not the API's JSON error", c.name, body)
		}
	}
	var many bytes.Buffer
	for i := range table.MaxEventsPerRequest + 1 {
		fmt.Fprintf(&many, `{"eventId":"m%d"}`+"\n", i)
	}
	if code, _, _ := post(t, srv.URL, many.Bytes(), bearer()); code != 413 {
		t.Errorf("too many events: %d", code)
	}
	// A closed writer stores nothing and says to retry.
	w.Close(context.Background())
	req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(one))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("closed writer: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestWriterBusy: while the database is locked by another writer, the queue
// fills and Write says ErrBusy at once instead of blocking; once the lock
// goes, everything queued is stored.
func TestWriterBusy(t *testing.T) {
	path := storetest.DSN(t, "sqlite")
	db, err := store.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	locker, err := sql.Open("sqlite", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	tx, err := locker.Begin() // _txlock=immediate: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO assignments (event_id, environment, experiment, feature_flag, allocation, variation, subject, timestamp, received_at) VALUES ('lock', 'p', 'f-a', 'f', 'a', 'v', 's', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	w := ingest.NewWriter(db, ingest.Options{QueueSize: 1})
	defer w.Close(context.Background())
	row := func(id string) []table.Row {
		return []table.Row{{EventID: id, Environment: "p", Experiment: "f-a", FeatureFlag: "f", Allocation: "a", Variation: "v", Subject: "s", Timestamp: time.Now(), ReceivedAt: time.Now()}}
	}
	results := make(chan error, 2)
	go func() { _, err := w.Write(context.Background(), row("a")); results <- err }() // taken by the writer, blocked on the lock
	deadline := time.Now().Add(10 * time.Second)
	busy := false
	queued := 0
	for !busy && time.Now().Before(deadline) {
		id := fmt.Sprintf("b%d", queued)
		errc := make(chan error, 1)
		go func() { _, err := w.Write(context.Background(), row(id)); errc <- err }()
		select {
		case err := <-errc:
			busy = err == ingest.ErrBusy
		case <-time.After(50 * time.Millisecond):
			queued++ // it waits in the queue: let it wait
			go func() { results <- <-errc }()
		}
	}
	if !busy {
		t.Fatal("Write never reported ErrBusy while the database was locked")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// A write counted as queued because it had not answered within 50 ms
	// may still have been refused with ErrBusy (a slow, loaded machine):
	// that is a refusal, not a queued write, and it stores nothing.
	stored := 1 + queued
	for range 1 + queued {
		switch err := <-results; {
		case err == ingest.ErrBusy:
			stored--
		case err != nil:
			t.Fatalf("a queued write failed after the lock went: %v", err)
		}
	}
	if n, _ := db.CountAssignments(context.Background(), store.AssignmentFilter{}); n != int64(stored) {
		t.Fatalf("%d rows, want %d", n, stored)
	}
}

func TestIngestTimestampBounds(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	srv, _ := newServer(t, db, ingest.Options{})
	future, past, ok := event("f", "a"), event("p", "b"), event("ok", "c")
	future["timestamp"] = time.Now().Add(48 * time.Hour).Format(time.RFC3339)
	past["timestamp"] = "1970-01-01T00:00:01Z"
	ok["timestamp"] = time.Now().Add(time.Hour).Format(time.RFC3339) // a little clock skew is fine
	body, _ := json.Marshal([]any{future, past, ok})
	code, resp, raw := post(t, srv.URL, body, bearer())
	if code != 200 || resp.Accepted != 1 || len(resp.Rejected) != 2 || !strings.Contains(resp.Rejected[0].Error, "out of range") {
		t.Fatalf("%d %s", code, raw)
	}
}

// TestIngestInFlightLimit: while the database is locked, requests pile up;
// beyond MaxInFlight the handler answers 503 at once instead of holding
// more bodies in memory. When the lock goes, every held request succeeds.
func TestIngestInFlightLimit(t *testing.T) {
	path := storetest.DSN(t, "sqlite")
	db, err := store.Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv, _ := newServer(t, db, ingest.Options{})
	locker, err := sql.Open("sqlite", store.SQLiteDSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close()
	tx, err := locker.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO assignments (event_id, environment, experiment, feature_flag, allocation, variation, subject, timestamp, received_at) VALUES ('lock', 'p', 'f-a', 'f', 'a', 'v', 's', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	// MaxInFlight+8 requests at once: each either holds a slot (and waits
	// for the lock) or is refused at once. Exactly 8 are refused.
	const extra = 8
	codes := make(chan int, ingest.MaxInFlight+extra)
	for i := range ingest.MaxInFlight + extra {
		go func() {
			body, _ := json.Marshal([]any{event(fmt.Sprintf("e-%d", i), "s")})
			code, _, _ := post(t, srv.URL, body, bearer())
			codes <- code
		}()
	}
	for range extra {
		select {
		case code := <-codes:
			if code != http.StatusServiceUnavailable {
				t.Fatalf("with the database locked, a request got %d before the lock went", code)
			}
		case <-time.After(9 * time.Second): // SQLite gives up waiting for the lock after 10 s
			t.Fatal("requests beyond the limit were not refused")
		}
	}
	tx.Rollback()
	for range ingest.MaxInFlight {
		if code := <-codes; code != 200 {
			t.Fatalf("a held request got %d once the lock went", code)
		}
	}
}

// TestIngestTrailingData: a JSON array followed by anything but whitespace
// is a broken body, refused whole (issue 10, item 13).
func TestIngestTrailingData(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	srv, _ := newServer(t, db, ingest.Options{})
	one, _ := json.Marshal([]any{event("t1", "a")})
	for _, tail := range []string{"GARBAGE", " ]", "\n{}", ",", "[]"} {
		code, _, body := post(t, srv.URL, append(bytes.Clone(one), tail...), bearer())
		if code != 400 || !strings.Contains(body, `"code": "invalid"`) && !strings.Contains(body, `"code":"invalid"`) {
			t.Errorf("array then %q: %d %s, want 400", tail, code, body)
		}
	}
	if code, _, body := post(t, srv.URL, append(one, " \r\n\t"...), bearer()); code != 200 {
		t.Errorf("array then whitespace: %d %s", code, body)
	}
	if n, _ := db.CountAssignments(context.Background(), store.AssignmentFilter{}); n != 1 {
		t.Fatalf("%d rows stored, want only the clean request's", n)
	}
}

// TestIngestInvalidUTF8: an event whose subject or keys are not valid
// UTF-8 is rejected (JSON decoding would turn every invalid byte into
// U+FFFD, so that different subjects collide). U+FFFD sent on purpose is
// kept. Issue 10, item 14.
func TestIngestInvalidUTF8(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	srv, _ := newServer(t, db, ingest.Options{})
	line := func(id, subject, flag string) string {
		return `{"eventId":"` + id + `","featureFlag":"` + flag + `","allocation":"a","variation":"v","subject":"` + subject +
			`","timestamp":"2026-05-01T12:00:00Z"}` + "\n"
	}
	body := line("u1", "user-\xff", "f") + // invalid byte in the subject
		line("u2", "user-\xfe", "f") + // another: would collide with u1
		line("u3", "alice", "fl\xc3ag") + // truncated sequence in the flag key
		line("u4", `\ud800x`, "f") + // a lone surrogate escape
		line("u5", "caf\u00e9 \U0001F600", "f") + // valid multi-byte text
		line("u6", `\ud83d\ude00 \ufffd`, "f") + // a surrogate pair, and U+FFFD on purpose
		line("u8", `nul\u0000`, "f") + // PostgreSQL cannot store a NUL
		strings.Replace(line("u7", "s", "f"), `"subject"`, "\"subjectAttributes\":{\"k\":\"\xff\"},\"subject\"", 1) // invalid in an attribute
	code, resp, raw := post(t, srv.URL, []byte(body), bearer())
	if code != 200 || resp.Accepted != 2 || len(resp.Rejected) != 6 {
		t.Fatalf("%d %s; want 2 accepted, 6 rejected", code, raw)
	}
	for i, want := range []string{"subject is not valid UTF-8", "subject is not valid UTF-8", "featureFlag is not valid UTF-8",
		"subject is not valid UTF-8", "subject contains a NUL", "not valid UTF-8"} {
		if r := resp.Rejected[i]; !strings.Contains(r.Error, want) {
			t.Errorf("rejection %d %+v, want %q", i, r, want)
		}
	}
	var subjects []string
	db.Assignments(context.Background(), store.AssignmentFilter{}, func(r *table.Row) error {
		subjects = append(subjects, r.Subject)
		return nil
	})
	if fmt.Sprint(subjects) != fmt.Sprint([]string{"caf\u00e9 \U0001F600", "\U0001F600 \ufffd"}) {
		t.Fatalf("stored %q", subjects)
	}
}

// gzipBomb is n bytes of whitespace inside an array, gzip-compressed (16
// MiB compress to about 16 KB).
func gzipBomb(n int) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write([]byte("["))
	chunk := bytes.Repeat([]byte(" "), 64<<10)
	for w := 1; w < n-1; w += len(chunk) {
		zw.Write(chunk[:min(len(chunk), n-1-w)])
	}
	zw.Write([]byte("]"))
	zw.Close()
	return buf.Bytes()
}

// TestIngestGzipBomb: 16 KB of gzip inflating to 16 MiB of whitespace is
// refused with 413 after a bounded amount of work: the handler stops
// inflating once the ratio passes MaxCompressionRatio, so one request
// allocates a few MiB (8 under the race detector), not the whole 16 MiB
// inflated into the decoder's buffers (with its quadratic rescans of
// buffered whitespace, 3.8 s of CPU) as before. Issue 10, item 3.
func TestIngestGzipBomb(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	w := ingest.NewWriter(db, ingest.Options{})
	defer w.Close(context.Background())
	h := &ingest.Handler{Environment: func(string) (string, bool) { return "production", true }, Writer: w,
		Log: slog.New(slog.DiscardHandler), Now: time.Now}
	bomb := gzipBomb(16 << 20)
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	serve := func() *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/assignments", bytes.NewReader(bomb))
		req.Header.Set("Content-Encoding", "gzip")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := serve(); rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "inflates more than") {
		t.Fatalf("bomb: %d %s", rec.Code, rec.Body.String())
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 4
	for range runs {
		serve()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 12<<20 {
		t.Fatalf("a refused bomb allocated %d MiB; want a bounded few", per>>20)
	}
}

// TestIngestWhitespaceBody: a body of almost 16 MiB of whitespace, sent
// uncompressed (so within every limit), is read in one linear pass: an
// empty array is accepted and a lone event found at its end.
func TestIngestWhitespaceBody(t *testing.T) {
	db := storetest.Open(t, "sqlite")
	srv, _ := newServer(t, db, ingest.Options{})
	one, _ := json.Marshal(event("w1", "a"))
	pad := bytes.Repeat([]byte(" "), table.MaxRequestBytes-len(one)-3)
	body := append(append(append([]byte("["), pad...), one...), ']')
	code, resp, raw := post(t, srv.URL, body, bearer())
	if code != 200 || resp.Accepted != 1 {
		t.Fatalf("%d %s", code, raw)
	}
}

// BenchmarkWhitespaceBody measures the cost per byte of a body of
// whitespace at two sizes: equal ns/byte means linear (the json.Decoder
// this replaced rescanned buffered whitespace, quadratic in the body).
func BenchmarkWhitespaceBody(b *testing.B) {
	db := storetest.Open(b, "sqlite")
	w := ingest.NewWriter(db, ingest.Options{})
	defer w.Close(context.Background())
	h := &ingest.Handler{Environment: func(string) (string, bool) { return "production", true }, Writer: w,
		Log: slog.New(slog.DiscardHandler), Now: time.Now}
	for _, size := range []int{1 << 20, 16<<20 - 1} {
		body := append(append([]byte("["), bytes.Repeat([]byte(" "), size-2)...), ']')
		b.Run(fmt.Sprintf("%dMiB", (size+1)>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/assignments", bytes.NewReader(body)))
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body.String())
				}
			}
		})
	}
}

// BenchmarkGzipBomb: the cost of one 16 KB request inflating to 16 MiB of
// whitespace (refused once past the compression ratio).
func BenchmarkGzipBomb(b *testing.B) {
	db := storetest.Open(b, "sqlite")
	w := ingest.NewWriter(db, ingest.Options{})
	defer w.Close(context.Background())
	h := &ingest.Handler{Environment: func(string) (string, bool) { return "production", true }, Writer: w,
		Log: slog.New(slog.DiscardHandler), Now: time.Now}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write([]byte("["))
	zw.Write(bytes.Repeat([]byte(" "), 16<<20-2))
	zw.Write([]byte("]"))
	zw.Close()
	bomb := buf.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/v1/assignments", bytes.NewReader(bomb))
		req.Header.Set("Content-Encoding", "gzip")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	b.ReportMetric(float64(len(bomb)), "gzip-bytes")
}
