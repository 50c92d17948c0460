package store

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// assignmentColumns is the column list of the assignments table, in the
// order inserts bind and Assignments scans.
const assignmentColumns = "event_id, environment, experiment, feature_flag, allocation, variation, subject, subject_attributes, timestamp, sdk_name, sdk_version, received_at, holdout, holdout_variation"

const assignmentColumnCount = 14

// insertChunk is how many rows go into one INSERT statement: 500 rows of 14
// columns stay well below SQLite's limit on bound parameters.
const insertChunk = 500

// InsertAssignments stores rows in one transaction. Rows whose event id is
// already stored are skipped, so a retried batch adds nothing; it returns
// how many rows were new. When it returns nil, the rows are durable.
func (d *DB) InsertAssignments(ctx context.Context, rows []table.Row) (int, error) {
	counts, err := d.InsertAssignmentGroups(ctx, [][]table.Row{rows})
	if err != nil {
		return 0, err
	}
	return counts[0], nil
}

// InsertAssignmentGroups stores several groups of rows (say, several
// requests) in one transaction and returns how many rows of each group were
// new (a row repeated in two groups counts in the first). Either every group
// is stored or none is, and when it returns nil the rows are durable: on
// SQLite the commit runs with synchronous=FULL (NORMAL, the connection's
// default, does not fsync the WAL at each commit, so a power loss could lose
// events the server acknowledged); on PostgreSQL it is one COPY into a
// temporary table and one INSERT ... SELECT. Either way the aggregates are
// updated in the same transaction (updateAggregates).
func (d *DB) InsertAssignmentGroups(ctx context.Context, groups [][]table.Row) ([]int, error) {
	var counts []int
	var err error
	if d.postgres {
		counts, err = d.copyAssignments(ctx, groups)
	} else {
		err = d.durableTx(ctx, func(tx *sql.Tx) error {
			counts, err = d.insertAssignments(ctx, tx, groups)
			if err == nil && testHookBeforeCommit != nil {
				testHookBeforeCommit(tx)
			}
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: insert assignments: %w", err)
	}
	d.maybeFold(ctx)
	return counts, nil
}

// testHookBeforeCommit, when set (tests), sees the SQLite transaction of
// InsertAssignmentGroups before its commit.
var testHookBeforeCommit func(*sql.Tx)

// assignmentSync is the synchronous mode of the assignment writer's
// commits on SQLite (a benchmark compares it with NORMAL).
var assignmentSync = "FULL"

// durableTx runs fn in a SQLite transaction whose commit is fsynced
// (synchronous=FULL on its connection, restored to NORMAL afterwards).
func (d *DB) durableTx(ctx context.Context, fn func(*sql.Tx) error) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA synchronous="+assignmentSync); err != nil {
		return err
	}
	defer func() {
		// Other writes keep NORMAL. A connection that cannot be reset is
		// dropped rather than returned to the pool in the wrong mode.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous=NORMAL"); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// insertAssignments inserts groups with multi-row INSERTs, then folds the
// rows actually inserted into the aggregates, in the same transaction.
//
// The common case is a batch of new events: the INSERTs run without
// RETURNING (prepared once, see prepared) and each chunk's count of changed
// rows says whether every row went in; then the batch itself is what was
// inserted. Only when a chunk skipped a known event id (a retry, or an id
// twice in the batch) does it roll back to a savepoint and insert again with
// RETURNING, which names the rows actually inserted.
func (d *DB) insertAssignments(ctx context.Context, tx *sql.Tx, groups [][]table.Row) ([]int, error) {
	if _, err := tx.ExecContext(ctx, `SAVEPOINT batch`); err != nil {
		return nil, err
	}
	counts := make([]int, len(groups))
	args := make([]any, 0, insertChunk*assignmentColumnCount)
	total := 0
	allNew := true
insert:
	for g, rows := range groups {
		total += len(rows)
		for start := 0; start < len(rows); start += insertChunk {
			chunk := rows[start:min(start+insertChunk, len(rows))]
			args = appendInsertArgs(args[:0], chunk)
			res, err := d.execCached(ctx, tx, d.insertAssignmentsQuery(len(chunk)), reusable(len(chunk), insertChunk), args)
			if err != nil {
				return nil, err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, err
			}
			if int(n) != len(chunk) {
				allNew = false
				break insert
			}
			counts[g] += len(chunk)
		}
	}
	if allNew {
		if d.noAggregates {
			return counts, nil
		}
		inserted := make([]insertedRow, 0, total)
		for _, rows := range groups {
			for i := range rows {
				inserted = append(inserted, rowInserted(&rows[i]))
			}
		}
		return counts, d.updateAggregates(ctx, tx, inserted)
	}
	if _, err := tx.ExecContext(ctx, `ROLLBACK TO batch`); err != nil {
		return nil, err
	}
	clear(counts)
	var inserted []insertedRow
	for g, rows := range groups {
		for start := 0; start < len(rows); start += insertChunk {
			chunk := rows[start:min(start+insertChunk, len(rows))]
			args = appendInsertArgs(args[:0], chunk)
			res, err := tx.QueryContext(ctx, d.insertAssignmentsQuery(len(chunk))+` RETURNING `+insertedColumns, args...)
			if err != nil {
				return nil, err
			}
			for res.Next() {
				var r insertedRow
				if err := res.Scan(&r.env, &r.flag, &r.alloc, &r.variation, &r.subject, &r.eventID, &r.ts, &r.holdout, &r.holdoutVariation); err != nil {
					res.Close()
					return nil, err
				}
				inserted = append(inserted, r)
				counts[g]++
			}
			res.Close()
			if err := res.Err(); err != nil {
				return nil, err
			}
		}
	}
	if err := d.updateAggregates(ctx, tx, inserted); err != nil {
		return nil, err
	}
	return counts, nil
}

func appendInsertArgs(args []any, chunk []table.Row) []any {
	for i := range chunk {
		r := &chunk[i]
		args = append(args, r.EventID, r.Environment, r.Experiment, r.FeatureFlag, r.Allocation, r.Variation,
			r.Subject, attributesText(r), r.Timestamp.UnixMicro(), r.SDKName, r.SDKVersion, r.ReceivedAt.UnixMicro(),
			r.Holdout, r.HoldoutVariation)
	}
	return args
}

// insertedColumns are the columns of an inserted row the aggregates read
// (insertedRow's, in its order).
const insertedColumns = "environment, feature_flag, allocation, variation, subject, event_id, timestamp, holdout, holdout_variation"

func attributesText(r *table.Row) string {
	if len(r.SubjectAttributes) == 0 {
		return "{}"
	}
	return string(r.SubjectAttributes)
}

// copyAssignments stores groups on PostgreSQL with COPY, the fastest way in:
// straight into the table when every event is new, else (COPY cannot skip
// known event ids) into a temporary table, then one INSERT ... SELECT ...
// ON CONFLICT DO NOTHING that returns the new ids.
func (d *DB) copyAssignments(ctx context.Context, groups [][]table.Row) ([]int, error) {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	counts := make([]int, len(groups))
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		pc := sc.Conn()
		if err := d.ensurePartitions(ctx, pc, groups); err != nil {
			return err
		}
		total := 0
		for _, rows := range groups {
			total += len(rows)
		}
		// COPY's text format, built by hand: a fraction of the CPU of
		// encoding each value through pgx's type map.
		copyText := func(table string) error {
			buf := make([]byte, 0, total*256)
			for _, rows := range groups {
				for i := range rows {
					buf = appendCopyRow(buf, &rows[i])
				}
			}
			_, err := pc.PgConn().CopyFrom(ctx, bytes.NewReader(buf), "COPY "+table+" ("+assignmentColumns+") FROM STDIN")
			return err
		}
		// The common case: no event is stored yet (retries are rare), so one
		// COPY straight into the table; every row it copies is new, so the
		// aggregates take the batch as it is. A known event id fails it
		// whole; then, and only then, go through a temporary table that can
		// skip them.
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		err = copyText("assignments")
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			inserted := make([]insertedRow, 0, total)
			for g, rows := range groups {
				counts[g] = len(rows)
				for i := range rows {
					inserted = append(inserted, rowInserted(&rows[i]))
				}
			}
			if err := d.updateAggregatesPG(ctx, tx, inserted); err != nil {
				return err
			}
			return tx.Commit(ctx)
		case !errors.As(err, &pgErr) || pgErr.Code != "23505": // unique_violation
			return err
		}
		if err := tx.Rollback(ctx); err != nil {
			return err
		}
		tx, err = pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		// Once per connection: later transactions find it (and empty, ON
		// COMMIT DELETE ROWS). pg_temp is private to the session.
		if _, err := tx.Exec(ctx, `CREATE TEMP TABLE IF NOT EXISTS assignments_in (LIKE assignments) ON COMMIT DELETE ROWS`); err != nil {
			return err
		}
		// Inside the transaction (the connection's), so the rows go with it.
		if err := copyText("assignments_in"); err != nil {
			return err
		}
		// RETURNING says which rows were new: to count them per group and
		// to fold them, and only them, into the aggregates.
		rows, err := tx.Query(ctx, `INSERT INTO assignments (`+assignmentColumns+`) SELECT `+assignmentColumns+
			` FROM assignments_in ON CONFLICT DO NOTHING RETURNING `+insertedColumns)
		if err != nil {
			return err
		}
		var inserted []insertedRow
		ids := make(map[string]struct{}, total)
		for rows.Next() {
			var r insertedRow
			if err := rows.Scan(&r.env, &r.flag, &r.alloc, &r.variation, &r.subject, &r.eventID, &r.ts, &r.holdout, &r.holdoutVariation); err != nil {
				rows.Close()
				return err
			}
			inserted = append(inserted, r)
			ids[r.eventID] = struct{}{}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for g, rows := range groups {
			for i := range rows {
				if _, ok := ids[rows[i].EventID]; ok {
					counts[g]++
					delete(ids, rows[i].EventID)
				}
			}
		}
		if err := d.updateAggregatesPG(ctx, tx, inserted); err != nil {
			return err
		}
		return tx.Commit(ctx)
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

func rowInserted(r *table.Row) insertedRow {
	return insertedRow{env: r.Environment, flag: r.FeatureFlag, alloc: r.Allocation, variation: r.Variation,
		subject: r.Subject, eventID: r.EventID, ts: r.Timestamp.UnixMicro(), holdout: r.Holdout, holdoutVariation: r.HoldoutVariation}
}

// appendCopyRow appends r as a line of COPY's text format: tab-separated,
// with backslash, tab, newline and carriage return escaped.
func appendCopyRow(dst []byte, r *table.Row) []byte {
	dst = appendCopyField(dst, r.EventID)
	dst = appendCopyField(dst, r.Environment)
	dst = appendCopyField(dst, r.Experiment)
	dst = appendCopyField(dst, r.FeatureFlag)
	dst = appendCopyField(dst, r.Allocation)
	dst = appendCopyField(dst, r.Variation)
	dst = appendCopyField(dst, r.Subject)
	dst = appendCopyField(dst, attributesText(r))
	dst = strconv.AppendInt(dst, r.Timestamp.UnixMicro(), 10)
	dst = append(dst, '\t')
	dst = appendCopyField(dst, r.SDKName)
	dst = appendCopyField(dst, r.SDKVersion)
	dst = strconv.AppendInt(dst, r.ReceivedAt.UnixMicro(), 10)
	dst = append(dst, '\t')
	dst = appendCopyField(dst, r.Holdout)
	dst = appendCopyField(dst, r.HoldoutVariation)
	dst[len(dst)-1] = '\n' // the last field ends the line, not a tab
	return dst
}

// appendCopyField appends s and a tab, escaped for COPY's text format.
func appendCopyField(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\t' || c == '\n' || c == '\r' {
			plain = false
			break
		}
	}
	if plain {
		dst = append(dst, s...)
		return append(dst, '\t')
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '\t')
}

// insertAssignmentsQuery builds a multi-row INSERT that skips known event
// ids (both dialects accept ON CONFLICT ... DO NOTHING).
func (d *DB) insertAssignmentsQuery(n int) string {
	if n == insertChunk && !d.postgres {
		fullInsertOnce.Do(func() { fullInsert = d.buildInsertQuery(n) })
		return fullInsert
	}
	return d.buildInsertQuery(n)
}

// fullInsert is the query of a full chunk, built once (SQLite's: PostgreSQL
// inserts by COPY).
var (
	fullInsertOnce sync.Once
	fullInsert     string
)

func (d *DB) buildInsertQuery(n int) string {
	var b strings.Builder
	b.Grow(80 + n*28)
	b.WriteString("INSERT INTO assignments (" + assignmentColumns + ") VALUES ")
	row := "(" + strings.Repeat("?, ", assignmentColumnCount-1) + "?)"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	b.WriteString(" ON CONFLICT (event_id) DO NOTHING")
	return d.q(b.String())
}

// AssignmentFilter selects rows of the assignment table. Zero fields do not
// filter. From is inclusive, To exclusive.
type AssignmentFilter struct {
	Environment string
	FeatureFlag string
	Allocation  string
	Experiment  string
	From, To    time.Time
}

func (f AssignmentFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, arg any) {
		conds = append(conds, cond)
		args = append(args, arg)
	}
	if f.Environment != "" {
		add("environment = ?", f.Environment)
	}
	if f.FeatureFlag != "" {
		add("feature_flag = ?", f.FeatureFlag)
	}
	if f.Allocation != "" {
		add("allocation = ?", f.Allocation)
	}
	if f.Experiment != "" {
		add("experiment = ?", f.Experiment)
	}
	if !f.From.IsZero() {
		add("timestamp >= ?", f.From.UnixMicro())
	}
	if !f.To.IsZero() {
		add("timestamp < ?", f.To.UnixMicro())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// Export pages: how many rows, and about how many bytes, one read takes.
// Each page is one short statement (its own read snapshot, released before
// the caller sees the rows), so that a slow reader of an export never holds
// a snapshot: on SQLite a held snapshot stops checkpoints and the WAL grows
// without bound while ingestion goes on.
var (
	pageRows  = 2000
	pageBytes = 4 << 20
)

// Assignments streams the rows f selects to fn, ordered by timestamp then
// event id, without holding them in memory. An error from fn stops it. The
// rows are read a page at a time (see AssignmentPages): rows stored while it
// runs may or may not be included.
func (d *DB) Assignments(ctx context.Context, f AssignmentFilter, fn func(*table.Row) error) error {
	return d.AssignmentPages(ctx, f, func(page []table.Row) error {
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// AssignmentPages calls fn with the rows f selects, a page at a time, in
// the order of Assignments. Each page is read in its own statement and the
// statement is done before fn runs, so fn may take as long as it likes
// without holding the database. Pages continue after the last row of the
// previous one (keyset pagination on timestamp, event_id), so each costs
// the same however far the export has gone. fn must not keep the page.
func (d *DB) AssignmentPages(ctx context.Context, f AssignmentFilter, fn func([]table.Row) error) error {
	where, args := f.where()
	n := len(args)
	page := make([]table.Row, 0, pageRows)
	var lastTS int64
	var lastID string
	for first := true; ; first = false {
		query, qargs := where, args[:n]
		if !first {
			// timestamp >= ? lets the timestamp indexes bound the scan.
			if query == "" {
				query = " WHERE "
			} else {
				query += " AND "
			}
			query += "timestamp >= ? AND (timestamp > ? OR event_id > ?)"
			qargs = append(qargs, lastTS, lastTS, lastID)
		}
		qargs = append(qargs, pageRows)
		full, err := d.readPage(ctx, "SELECT "+assignmentColumns+" FROM assignments"+query+" ORDER BY timestamp, event_id LIMIT ?", qargs, &page)
		if err != nil {
			return fmt.Errorf("store: assignments: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		last := &page[len(page)-1]
		lastTS, lastID = last.Timestamp.UnixMicro(), last.EventID
		if err := fn(page); err != nil {
			return err
		}
		if !full {
			return nil
		}
	}
}

// readPage reads one page into *page and reports whether it is full (more
// rows may follow). It stops early past pageBytes.
func (d *DB) readPage(ctx context.Context, query string, args []any, page *[]table.Row) (bool, error) {
	*page = (*page)[:0]
	rows, err := d.db.QueryContext(ctx, d.q(query), args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	size := 0
	var attrs string
	var ts, received int64
	for rows.Next() {
		var a table.Row
		if err := rows.Scan(&a.EventID, &a.Environment, &a.Experiment, &a.FeatureFlag, &a.Allocation, &a.Variation,
			&a.Subject, &attrs, &ts, &a.SDKName, &a.SDKVersion, &received, &a.Holdout, &a.HoldoutVariation); err != nil {
			return false, err
		}
		a.SubjectAttributes = json.RawMessage(attrs)
		a.Timestamp = time.UnixMicro(ts).UTC()
		a.ReceivedAt = time.UnixMicro(received).UTC()
		*page = append(*page, a)
		if size += len(attrs) + len(a.Subject) + len(a.EventID) + 128; size >= pageBytes {
			return true, rows.Close()
		}
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	return len(*page) == pageRows, rows.Close()
}

// CountAssignments returns how many rows f selects.
func (d *DB) CountAssignments(ctx context.Context, f AssignmentFilter) (int64, error) {
	where, args := f.where()
	var n int64
	err := d.db.QueryRowContext(ctx, d.q("SELECT COUNT(*) FROM assignments"+where), args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count assignments: %w", err)
	}
	return n, nil
}

// DeleteAssignmentsBefore deletes at most limit rows whose timestamp is
// before t and returns how many it deleted. Retention calls it in small
// batches so that ingestion never waits long behind it.
func (d *DB) DeleteAssignmentsBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	keep := ""
	if !d.postgres {
		// With a sink, keep the last row inserted: SQLite numbers a new row
		// MAX(rowid)+1, and sinks read by rowid, so deleting it would hand
		// out again numbers a sink has sealed past (and the new rows would
		// never be sealed). One row outlives the retention, no more.
		keep = " AND (rowid < (SELECT MAX(rowid) FROM assignments) OR NOT EXISTS (SELECT 1 FROM sinks))"
	}
	key, cols := "event_id", "event_id"
	if d.postgres {
		key, cols = "(event_id, timestamp)", "event_id, timestamp" // the partitioned table's primary key
	}
	q := d.q(`DELETE FROM assignments WHERE ` + key + ` IN (SELECT ` + cols + ` FROM assignments WHERE timestamp < ?` + keep + ` LIMIT ?)`)
	res, err := d.db.ExecContext(ctx, q, t.UnixMicro(), limit)
	if err != nil {
		return 0, fmt.Errorf("store: delete old assignments: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// AssignmentSummary describes the rows a filter selects, for analysis
// checks: how many, per variation, per day, and how clean.
type AssignmentSummary struct {
	Assignments int64 `json:"assignments"`
	Subjects    int64 `json:"subjects"`
	// MultipleVariations counts subjects seen in more than one variation;
	// an analysis excludes them.
	MultipleVariations int64 `json:"multipleVariations"`
	// Variations counts, per variation, the subjects seen only in it.
	Variations map[string]int64 `json:"variations"`
	Daily      []DailyCount     `json:"daily"`
	// HoldoutHalves splits the counts by holdout half (the rows'
	// holdout_variation), for a holdout allocation (issue 15); absent when
	// no row is in a holdout.
	HoldoutHalves []HoldoutHalf `json:"holdoutHalves,omitempty"`
}

// HoldoutHalf is a summary's share in one half of a holdout: status_quo or
// all_shipped. A subject counts in the half of its first exposure.
type HoldoutHalf struct {
	HoldoutVariation   string           `json:"holdoutVariation"`
	Assignments        int64            `json:"assignments"`
	Subjects           int64            `json:"subjects"`
	MultipleVariations int64            `json:"multipleVariations"`
	Variations         map[string]int64 `json:"variations"`
}

// DailyCount is one variation's assignments on one UTC day.
type DailyCount struct {
	Day         string `json:"day"` // YYYY-MM-DD
	Variation   string `json:"variation"`
	Assignments int64  `json:"assignments"`
	// Subjects counts the subjects whose first exposure to the allocation
	// was that day, in that variation (with a time range: the distinct
	// subjects seen that day).
	Subjects int64 `json:"subjects"`
}

const microsPerDay = 86_400_000_000

// SummarizeAssignments computes the summary of the rows f selects. The
// summary of a whole allocation (Environment, FeatureFlag and Allocation set,
// no time range: what the API, the web UI and the SRM check ask) reads only
// the aggregates, in time independent of the number of rows; any other
// filter is computed from the raw table, in the database.
func (d *DB) SummarizeAssignments(ctx context.Context, f AssignmentFilter) (AssignmentSummary, error) {
	if f.Environment != "" && f.FeatureFlag != "" && f.Allocation != "" && f.Experiment == "" && f.From.IsZero() && f.To.IsZero() {
		return d.summarizeAggregates(ctx, f)
	}
	return d.summarizeRaw(ctx, f)
}

// summarizeRaw computes the summary from the raw rows f selects.
func (d *DB) summarizeRaw(ctx context.Context, f AssignmentFilter) (AssignmentSummary, error) {
	sum := AssignmentSummary{Variations: map[string]int64{}, Daily: []DailyCount{}}
	where, args := f.where()
	wrap := func(err error) error { return fmt.Errorf("store: summarize assignments: %w", err) }

	err := d.db.QueryRowContext(ctx, d.q("SELECT COUNT(*), COUNT(DISTINCT subject) FROM assignments"+where), args...).Scan(&sum.Assignments, &sum.Subjects)
	if err != nil {
		return sum, wrap(err)
	}
	// Per subject: how many variations, (when one) which, and its holdout
	// half (a subject's half is fixed by its hash on the holdout's salt).
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT hv, n, v, COUNT(*) FROM (
		SELECT subject, MIN(holdout_variation) AS hv, COUNT(DISTINCT variation) AS n, MIN(variation) AS v FROM assignments`+where+` GROUP BY subject
	) per_subject GROUP BY hv, n, v`), args...)
	if err != nil {
		return sum, wrap(err)
	}
	halves := newHalves()
	for rows.Next() {
		var n, count int64
		var v, hv string
		if err := rows.Scan(&hv, &n, &v, &count); err != nil {
			rows.Close()
			return sum, wrap(err)
		}
		halves.add(hv, v, 0, count)
		if n == 1 {
			sum.Variations[v] += count
		} else {
			sum.MultipleVariations += count
			halves.multiple(hv, v, count)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
	rows, err = d.db.QueryContext(ctx, d.q(`SELECT holdout_variation, COUNT(*) FROM assignments`+where+` GROUP BY holdout_variation`), args...)
	if err != nil {
		return sum, wrap(err)
	}
	for rows.Next() {
		var hv string
		var count int64
		if err := rows.Scan(&hv, &count); err != nil {
			rows.Close()
			return sum, wrap(err)
		}
		halves.add(hv, "", count, 0)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
	sum.HoldoutHalves = halves.list()
	rows, err = d.db.QueryContext(ctx, d.q(fmt.Sprintf(`SELECT timestamp / %d AS day, variation, COUNT(*), COUNT(DISTINCT subject)
		FROM assignments%s GROUP BY day, variation ORDER BY day, variation`, microsPerDay, where)), args...)
	if err != nil {
		return sum, wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var day int64
		var c DailyCount
		if err := rows.Scan(&day, &c.Variation, &c.Assignments, &c.Subjects); err != nil {
			return sum, wrap(err)
		}
		c.Day = time.UnixMicro(day * microsPerDay).UTC().Format("2006-01-02")
		sum.Daily = append(sum.Daily, c)
	}
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
	return sum, nil
}
