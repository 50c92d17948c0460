package table

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// FirstExposureColumns are the columns of the first-exposure table, in
// order: the CSV header, the JSON lines keys and the Parquet column names.
var FirstExposureColumns = []string{"environment", "feature_flag", "allocation", "subject", "first_variation",
	"first_event_id", "first_seen", "last_seen", "exposures", "multiple_variations", "holdout", "holdout_variation"}

// FirstExposure is one row of the first-exposure table: one subject's first
// exposure to one allocation (the earliest event, ties broken by event id),
// when it was last seen, how many exposures it had, and whether it was seen
// in more than one variation (an analysis leaves such subjects out). It is
// what analyses join against: one row per subject, not per event.
type FirstExposure struct {
	Environment        string    `json:"environment" parquet:"environment,dict"`
	FeatureFlag        string    `json:"feature_flag" parquet:"feature_flag,dict"`
	Allocation         string    `json:"allocation" parquet:"allocation,dict"`
	Subject            string    `json:"subject" parquet:"subject"`
	FirstVariation     string    `json:"first_variation" parquet:"first_variation,dict"`
	FirstEventID       string    `json:"first_event_id" parquet:"first_event_id"`
	FirstSeen          time.Time `json:"first_seen" parquet:"first_seen,timestamp(microsecond)"`
	LastSeen           time.Time `json:"last_seen" parquet:"last_seen,timestamp(microsecond)"`
	Exposures          int64     `json:"exposures" parquet:"exposures"`
	MultipleVariations bool      `json:"multiple_variations" parquet:"multiple_variations"`
	// Holdout and HoldoutVariation are the first exposure's, as in the
	// assignment table's row of that event ("" outside holdouts). Last, so
	// files written before them keep their column positions.
	Holdout          string `json:"holdout" parquet:"holdout,dict"`
	HoldoutVariation string `json:"holdout_variation" parquet:"holdout_variation,dict"`
}

// FirstExposureWriter writes first-exposure rows to an io.Writer in one
// format, as Writer does assignment rows (same quoting, same time form).
type FirstExposureWriter struct {
	w      io.Writer
	format Format
	buf    []byte
	header bool
	pq     *parquet.GenericWriter[FirstExposure]
	group  int
}

// NewFirstExposureWriter returns a FirstExposureWriter of format f to w.
func NewFirstExposureWriter(w io.Writer, f Format) *FirstExposureWriter {
	fw := &FirstExposureWriter{w: w, format: f}
	if f == Parquet {
		fw.pq = parquet.NewGenericWriter[FirstExposure](w, parquet.Compression(&parquet.Zstd))
	}
	return fw
}

// Write writes rows; it keeps nothing of them.
func (w *FirstExposureWriter) Write(_ context.Context, rows []FirstExposure) error {
	if w.format == Parquet {
		for len(rows) > 0 {
			n := min(len(rows), rowGroupRows-w.group)
			if _, err := w.pq.Write(rows[:n]); err != nil {
				return err
			}
			rows = rows[n:]
			if w.group += n; w.group >= rowGroupRows {
				w.group = 0
				if err := w.pq.Flush(); err != nil {
					return err
				}
			}
		}
		return nil
	}
	w.buf = w.buf[:0]
	if w.format == CSV && !w.header {
		w.header = true
		w.buf = append(w.buf, strings.Join(FirstExposureColumns, ",")+"\n"...)
	}
	for i := range rows {
		r := &rows[i]
		if w.format == JSONL {
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("first exposure of %q: %w", r.Subject, err)
			}
			w.buf = append(append(w.buf, b...), '\n')
			continue
		}
		for _, s := range [...]string{r.Environment, r.FeatureFlag, r.Allocation, r.Subject, r.FirstVariation, r.FirstEventID} {
			w.buf = append(appendCSVField(w.buf, s), ',')
		}
		w.buf = append(r.FirstSeen.UTC().AppendFormat(w.buf, time.RFC3339Nano), ',')
		w.buf = append(r.LastSeen.UTC().AppendFormat(w.buf, time.RFC3339Nano), ',')
		w.buf = append(strconv.AppendInt(w.buf, r.Exposures, 10), ',')
		w.buf = append(strconv.AppendBool(w.buf, r.MultipleVariations), ',')
		w.buf = append(appendCSVField(w.buf, r.Holdout), ',')
		w.buf = append(appendCSVField(w.buf, r.HoldoutVariation), '\n')
	}
	_, err := w.w.Write(w.buf)
	return err
}

// Close finishes the file: the CSV header of an empty table, the Parquet
// footer.
func (w *FirstExposureWriter) Close(ctx context.Context) error {
	switch w.format {
	case Parquet:
		return w.pq.Close()
	case CSV:
		if !w.header {
			return w.Write(ctx, nil)
		}
	}
	return nil
}

// ReadFirstExposuresParquet reads a whole first-exposure Parquet file.
func ReadFirstExposuresParquet(r io.ReaderAt, size int64) ([]FirstExposure, error) {
	rows, err := parquet.Read[FirstExposure](r, size)
	for i := range rows {
		rows[i].FirstSeen, rows[i].LastSeen = rows[i].FirstSeen.UTC(), rows[i].LastSeen.UTC()
	}
	return rows, err
}
