package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Assignment is one row of the assignment table: an assignment event an SDK
// logged, as stored.
type Assignment struct {
	EventID     string `json:"eventId"`
	Environment string `json:"environment"`
	// Experiment is FeatureFlag + "-" + Allocation, as in SDK events.
	Experiment        string          `json:"experiment"`
	FeatureFlag       string          `json:"featureFlag"`
	Allocation        string          `json:"allocation"`
	Variation         string          `json:"variation"`
	Subject           string          `json:"subject"`
	SubjectAttributes json.RawMessage `json:"subjectAttributes"`
	Timestamp         time.Time       `json:"timestamp"`
	SDKName           string          `json:"sdkName"`
	SDKVersion        string          `json:"sdkVersion"`
	ReceivedAt        time.Time       `json:"receivedAt"`
}

// assignmentColumns is the column list of the assignments table, in the
// order InsertAssignments binds and Assignments scans.
const assignmentColumns = "event_id, environment, experiment, feature_flag, allocation, variation, subject, subject_attributes, timestamp, sdk_name, sdk_version, received_at"

const assignmentColumnCount = 12

// insertChunk is how many rows go into one INSERT statement: 500 rows of 12
// columns stay well below SQLite's limit on bound parameters.
const insertChunk = 500

// InsertAssignments stores rows in one transaction. Rows whose event id is
// already stored are skipped, so a retried batch adds nothing; it returns
// how many rows were new. When it returns nil, the rows are durable.
func (d *DB) InsertAssignments(ctx context.Context, rows []Assignment) (int, error) {
	counts, err := d.InsertAssignmentGroups(ctx, [][]Assignment{rows})
	if err != nil {
		return 0, err
	}
	return counts[0], nil
}

// InsertAssignmentGroups stores several groups of rows (say, several
// requests) in one transaction and returns how many rows of each group were
// new. Either every group is stored or none is.
func (d *DB) InsertAssignmentGroups(ctx context.Context, groups [][]Assignment) ([]int, error) {
	counts := make([]int, len(groups))
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: insert assignments: %w", err)
	}
	defer tx.Rollback()
	args := make([]any, 0, insertChunk*assignmentColumnCount)
	for g, rows := range groups {
		for start := 0; start < len(rows); start += insertChunk {
			chunk := rows[start:min(start+insertChunk, len(rows))]
			args = args[:0]
			for i := range chunk {
				r := &chunk[i]
				attrs := string(r.SubjectAttributes)
				if attrs == "" {
					attrs = "{}"
				}
				args = append(args, r.EventID, r.Environment, r.Experiment, r.FeatureFlag, r.Allocation, r.Variation,
					r.Subject, attrs, r.Timestamp.UnixMicro(), r.SDKName, r.SDKVersion, r.ReceivedAt.UnixMicro())
			}
			res, err := tx.ExecContext(ctx, d.insertAssignmentsQuery(len(chunk)), args...)
			if err != nil {
				return nil, fmt.Errorf("store: insert assignments: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return nil, fmt.Errorf("store: insert assignments: %w", err)
			}
			counts[g] += int(n)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: insert assignments: commit: %w", err)
	}
	return counts, nil
}

// insertAssignmentsQuery builds a multi-row INSERT that skips known event
// ids (both dialects accept ON CONFLICT ... DO NOTHING).
func (d *DB) insertAssignmentsQuery(n int) string {
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

// Assignments streams the rows f selects to fn, ordered by timestamp then
// event id, without holding them in memory. An error from fn stops it.
func (d *DB) Assignments(ctx context.Context, f AssignmentFilter, fn func(*Assignment) error) error {
	where, args := f.where()
	rows, err := d.db.QueryContext(ctx, d.q("SELECT "+assignmentColumns+" FROM assignments"+where+" ORDER BY timestamp, event_id"), args...)
	if err != nil {
		return fmt.Errorf("store: assignments: %w", err)
	}
	defer rows.Close()
	var a Assignment
	var attrs string
	var ts, received int64
	for rows.Next() {
		if err := rows.Scan(&a.EventID, &a.Environment, &a.Experiment, &a.FeatureFlag, &a.Allocation, &a.Variation,
			&a.Subject, &attrs, &ts, &a.SDKName, &a.SDKVersion, &received); err != nil {
			return fmt.Errorf("store: assignments: %w", err)
		}
		a.SubjectAttributes = json.RawMessage(attrs)
		a.Timestamp = time.UnixMicro(ts).UTC()
		a.ReceivedAt = time.UnixMicro(received).UTC()
		if err := fn(&a); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: assignments: %w", err)
	}
	return nil
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
	q := d.q(`DELETE FROM assignments WHERE event_id IN (SELECT event_id FROM assignments WHERE timestamp < ? LIMIT ?)`)
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
}

// DailyCount is one variation's assignments on one UTC day.
type DailyCount struct {
	Day         string `json:"day"` // YYYY-MM-DD
	Variation   string `json:"variation"`
	Assignments int64  `json:"assignments"`
	Subjects    int64  `json:"subjects"`
}

const microsPerDay = 86_400_000_000

// SummarizeAssignments computes the summary of the rows f selects in the
// database, without reading the rows out.
func (d *DB) SummarizeAssignments(ctx context.Context, f AssignmentFilter) (AssignmentSummary, error) {
	sum := AssignmentSummary{Variations: map[string]int64{}, Daily: []DailyCount{}}
	where, args := f.where()
	wrap := func(err error) error { return fmt.Errorf("store: summarize assignments: %w", err) }

	err := d.db.QueryRowContext(ctx, d.q("SELECT COUNT(*), COUNT(DISTINCT subject) FROM assignments"+where), args...).Scan(&sum.Assignments, &sum.Subjects)
	if err != nil {
		return sum, wrap(err)
	}
	// Per subject: how many variations, and (when one) which.
	rows, err := d.db.QueryContext(ctx, d.q(`SELECT n, v, COUNT(*) FROM (
		SELECT subject, COUNT(DISTINCT variation) AS n, MIN(variation) AS v FROM assignments`+where+` GROUP BY subject
	) per_subject GROUP BY n, v`), args...)
	if err != nil {
		return sum, wrap(err)
	}
	for rows.Next() {
		var n, count int64
		var v string
		if err := rows.Scan(&n, &v, &count); err != nil {
			rows.Close()
			return sum, wrap(err)
		}
		if n == 1 {
			sum.Variations[v] += count
		} else {
			sum.MultipleVariations += count
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sum, wrap(err)
	}
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
