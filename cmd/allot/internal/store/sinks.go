package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// seqColumn is the assignment table's event sequence: the rowid on SQLite,
// the seq column on PostgreSQL (migration 0007).
func (d *DB) seqColumn() string {
	if d.postgres {
		return "seq"
	}
	return "rowid"
}

// SinkSealed returns the last sequence the sink name has sealed, 0 if it
// has sealed nothing.
func (d *DB) SinkSealed(ctx context.Context, name string) (int64, error) {
	var seq int64
	err := d.db.QueryRowContext(ctx, d.q(`SELECT sealed FROM sinks WHERE name = ?`), name).Scan(&seq)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: sink %s: %w", name, err)
	}
	return seq, nil
}

// SetSinkSealed records that the sink name has sealed every row up to seq.
func (d *DB) SetSinkSealed(ctx context.Context, name string, seq int64) error {
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO sinks (name, sealed, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at`),
		name, seq, d.now().UnixMicro())
	if err != nil {
		return fmt.Errorf("store: record sink %s: %w", name, err)
	}
	return nil
}

// AssignmentHorizon returns a sequence such that every row numbered up to
// it is committed: no row at or below it can appear later. With exact
// false it returns the largest visible sequence without that guarantee
// on PostgreSQL (cheap, to estimate how many rows wait).
//
// On SQLite writers take turns, so the largest visible rowid is the
// horizon. On PostgreSQL a transaction can commit a lower seq after a
// higher one is visible; a SHARE lock on the table waits for the inserting
// transactions in flight (and holds new ones back for the one read), so
// the largest seq read under it is final.
func (d *DB) AssignmentHorizon(ctx context.Context, exact bool) (int64, error) {
	query := "SELECT COALESCE(MAX(" + d.seqColumn() + "), 0) FROM assignments"
	var seq int64
	if !d.postgres || !exact {
		if err := d.db.QueryRowContext(ctx, query).Scan(&seq); err != nil {
			return 0, fmt.Errorf("store: assignment horizon: %w", err)
		}
		return seq, nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: assignment horizon: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "LOCK TABLE assignments IN SHARE MODE"); err != nil {
		return 0, fmt.Errorf("store: assignment horizon: %w", err)
	}
	if err := tx.QueryRowContext(ctx, query).Scan(&seq); err != nil {
		return 0, fmt.Errorf("store: assignment horizon: %w", err)
	}
	return seq, tx.Commit()
}

// AssignmentSeqPages calls fn with the rows numbered after < seq <= upTo,
// in sequence order, a page at a time (each page its own statement, done
// before fn runs), and stops after limit rows (limit <= 0: no limit). seqs
// holds each row's sequence. fn must not keep the slices.
func (d *DB) AssignmentSeqPages(ctx context.Context, after, upTo int64, limit int, fn func(seqs []int64, rows []table.Row) error) error {
	col := d.seqColumn()
	query := d.q("SELECT " + col + ", " + assignmentColumns + " FROM assignments WHERE " + col + " > ? AND " + col + " <= ? ORDER BY " + col + " LIMIT ?")
	seqs := make([]int64, 0, pageRows)
	page := make([]table.Row, 0, pageRows)
	total := 0
	for {
		n := pageRows
		if limit > 0 {
			n = min(n, limit-total)
		}
		if n <= 0 {
			return nil
		}
		seqs, page = seqs[:0], page[:0]
		if err := d.readSeqPage(ctx, query, []any{after, upTo, n}, &seqs, &page); err != nil {
			return fmt.Errorf("store: assignments by sequence: %w", err)
		}
		if len(page) == 0 {
			return nil
		}
		total += len(page)
		after = seqs[len(seqs)-1]
		if err := fn(seqs, page); err != nil {
			return err
		}
		if len(page) < n {
			return nil
		}
	}
}

func (d *DB) readSeqPage(ctx context.Context, query string, args []any, seqs *[]int64, page *[]table.Row) error {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var attrs string
	var seq, ts, received int64
	for rows.Next() {
		var a table.Row
		if err := rows.Scan(&seq, &a.EventID, &a.Environment, &a.Experiment, &a.FeatureFlag, &a.Allocation, &a.Variation,
			&a.Subject, &attrs, &ts, &a.SDKName, &a.SDKVersion, &received, &a.Holdout, &a.HoldoutVariation); err != nil {
			return err
		}
		a.SubjectAttributes = json.RawMessage(attrs)
		a.Timestamp = time.UnixMicro(ts).UTC()
		a.ReceivedAt = time.UnixMicro(received).UTC()
		*seqs = append(*seqs, seq)
		*page = append(*page, a)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}
