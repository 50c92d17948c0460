package table

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
)

// Format is a file format of the table.
type Format string

// The formats a table is written in.
const (
	CSV     Format = "csv"
	JSONL   Format = "jsonl"
	Parquet Format = "parquet"
)

// ParseFormat reads a format name (csv, jsonl or parquet).
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case CSV, JSONL, Parquet:
		return f, nil
	}
	return "", fmt.Errorf("%q is not csv, jsonl or parquet", s)
}

// ContentType is the media type of a file in format f.
func (f Format) ContentType() string {
	switch f {
	case JSONL:
		return "application/x-ndjson"
	case Parquet:
		return "application/vnd.apache.parquet"
	}
	return "text/csv; charset=utf-8"
}

// Ext is the file name extension of format f, with its dot.
func (f Format) Ext() string { return "." + string(f) }

// rowGroupRows is how many rows a Parquet row group holds: bounded, so
// that a writer's memory does not grow with the table.
const rowGroupRows = 64 << 10

// Writer writes rows to an io.Writer in one format. It is a Sink. It does
// not buffer the destination: wrap it in a bufio.Writer.
type Writer struct {
	w      io.Writer
	format Format
	buf    []byte // CSV and JSON lines: the encoded batch
	header bool   // CSV: header written
	csv    CSVEncoder
	pq     *parquet.GenericWriter[parquetRow]
	pqRows []parquetRow
	group  int // rows in the current Parquet row group
}

var _ Sink = (*Writer)(nil)

// NewWriter returns a Writer of format f to w.
func NewWriter(w io.Writer, f Format) *Writer {
	tw := &Writer{w: w, format: f}
	if f == Parquet {
		tw.pq = parquet.NewGenericWriter[parquetRow](w, parquet.Compression(&parquet.Zstd))
	}
	return tw
}

// Write writes rows.
func (w *Writer) Write(_ context.Context, rows []Row) error {
	switch w.format {
	case Parquet:
		return w.writeParquet(rows)
	case JSONL:
		w.buf = w.buf[:0]
		for i := range rows {
			w.buf = AppendJSON(w.buf, &rows[i])
		}
	default:
		w.buf = w.buf[:0]
		if !w.header {
			w.header = true
			w.buf = AppendCSVHeader(w.buf)
		}
		for i := range rows {
			w.buf = w.csv.Append(w.buf, &rows[i])
		}
	}
	_, err := w.w.Write(w.buf)
	return err
}

// Close finishes the file: the CSV header of an empty table, the Parquet
// footer.
func (w *Writer) Close(ctx context.Context) error {
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

// AppendCSVHeader appends the header line of a CSV table.
func AppendCSVHeader(dst []byte) []byte {
	return append(dst, strings.Join(Columns, ",")+"\n"...)
}

// AppendCSV appends r as a CSV record (RFC 4180, quoted as encoding/csv
// quotes, "\n" line ends). Times are RFC 3339 in UTC with the fraction of a
// second they have (microseconds at most).
func AppendCSV(dst []byte, r *Row) []byte {
	var e CSVEncoder
	return e.Append(dst, r)
}

// CSVEncoder appends rows as AppendCSV does, keeping the text of the last
// times it formatted: the rows of one `allot assign` run all share theirs,
// and formatting a time costs more than the rest of a row. One per
// goroutine; the zero value is ready.
type CSVEncoder struct {
	ts, recv         time.Time
	tsText, recvText []byte
}

// Append appends r as a CSV record.
func (e *CSVEncoder) Append(dst []byte, r *Row) []byte {
	for i, s := range [...]string{r.EventID, r.Environment, r.Experiment, r.FeatureFlag, r.Allocation, r.Variation, r.Subject} {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCSVField(dst, s)
	}
	dst = append(dst, ',')
	attrs := r.SubjectAttributes
	if len(attrs) == 0 {
		attrs = json.RawMessage("{}")
	}
	dst = appendCSVField(dst, string(attrs))
	dst = append(dst, ',')
	if e.tsText == nil || !r.Timestamp.Equal(e.ts) {
		e.ts, e.tsText = r.Timestamp, r.Timestamp.UTC().AppendFormat(e.tsText[:0], time.RFC3339Nano)
	}
	dst = append(dst, e.tsText...)
	dst = append(dst, ',')
	dst = appendCSVField(dst, r.SDKName)
	dst = append(dst, ',')
	dst = appendCSVField(dst, r.SDKVersion)
	dst = append(dst, ',')
	if e.recvText == nil || !r.ReceivedAt.Equal(e.recv) {
		e.recv, e.recvText = r.ReceivedAt, r.ReceivedAt.UTC().AppendFormat(e.recvText[:0], time.RFC3339Nano)
	}
	dst = append(dst, e.recvText...)
	dst = append(dst, ',')
	dst = appendCSVField(dst, r.Holdout)
	dst = append(dst, ',')
	dst = appendCSVField(dst, r.HoldoutVariation)
	return append(dst, '\n')
}

// appendCSVField quotes s when encoding/csv would: it holds a comma, a
// quote or a line break, or starts with a space.
func appendCSVField(dst []byte, s string) []byte {
	quote := s == `\.` || strings.ContainsAny(s, ",\"\r\n")
	if !quote && s != "" {
		r, _ := utf8.DecodeRuneInString(s)
		quote = unicode.IsSpace(r)
	}
	if !quote {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		dst = append(dst, s[:i+1]...)
		dst = append(dst, '"')
		s = s[i+1:]
	}
	dst = append(dst, s...)
	return append(dst, '"')
}

// jsonRow is a JSON line of the table, keyed by the column names.
type jsonRow struct {
	EventID           string          `json:"event_id"`
	Environment       string          `json:"environment"`
	Experiment        string          `json:"experiment"`
	FeatureFlag       string          `json:"feature_flag"`
	Allocation        string          `json:"allocation"`
	Variation         string          `json:"variation"`
	Subject           string          `json:"subject"`
	SubjectAttributes json.RawMessage `json:"subject_attributes"`
	Timestamp         time.Time       `json:"timestamp"`
	SDKName           string          `json:"sdk_name"`
	SDKVersion        string          `json:"sdk_version"`
	ReceivedAt        time.Time       `json:"received_at"`
	Holdout           string          `json:"holdout"`
	HoldoutVariation  string          `json:"holdout_variation"`
}

// AppendJSON appends r as one JSON line.
func AppendJSON(dst []byte, r *Row) []byte {
	attrs := r.SubjectAttributes
	if len(attrs) == 0 || !json.Valid(attrs) {
		attrs = json.RawMessage("{}")
	}
	b, err := json.Marshal(jsonRow{r.EventID, r.Environment, r.Experiment, r.FeatureFlag, r.Allocation, r.Variation,
		r.Subject, attrs, r.Timestamp.UTC(), r.SDKName, r.SDKVersion, r.ReceivedAt.UTC(), r.Holdout, r.HoldoutVariation})
	if err != nil {
		// Only a time outside years 0-9999 fails, and the store never
		// holds one; write the row without its times rather than lose it.
		b, _ = json.Marshal(jsonRow{EventID: r.EventID, Environment: r.Environment, Experiment: r.Experiment,
			FeatureFlag: r.FeatureFlag, Allocation: r.Allocation, Variation: r.Variation, Subject: r.Subject, SubjectAttributes: attrs,
			Holdout: r.Holdout, HoldoutVariation: r.HoldoutVariation})
	}
	dst = append(dst, b...)
	return append(dst, '\n')
}

// parquetRow is a row in Parquet: subject_attributes as JSON text, times as
// microseconds UTC, low-cardinality columns dictionary-encoded.
type parquetRow struct {
	EventID           string    `parquet:"event_id"`
	Environment       string    `parquet:"environment,dict"`
	Experiment        string    `parquet:"experiment,dict"`
	FeatureFlag       string    `parquet:"feature_flag,dict"`
	Allocation        string    `parquet:"allocation,dict"`
	Variation         string    `parquet:"variation,dict"`
	Subject           string    `parquet:"subject"`
	SubjectAttributes string    `parquet:"subject_attributes,json"`
	Timestamp         time.Time `parquet:"timestamp,timestamp(microsecond)"`
	SDKName           string    `parquet:"sdk_name,dict"`
	SDKVersion        string    `parquet:"sdk_version,dict"`
	ReceivedAt        time.Time `parquet:"received_at,timestamp(microsecond)"`
	Holdout           string    `parquet:"holdout,dict"`
	HoldoutVariation  string    `parquet:"holdout_variation,dict"`
}

func (w *Writer) writeParquet(rows []Row) error {
	for len(rows) > 0 {
		n := min(len(rows), rowGroupRows-w.group)
		w.pqRows = w.pqRows[:0]
		for i := range rows[:n] {
			r := &rows[i]
			attrs := string(r.SubjectAttributes)
			if attrs == "" {
				attrs = "{}"
			}
			w.pqRows = append(w.pqRows, parquetRow{r.EventID, r.Environment, r.Experiment, r.FeatureFlag, r.Allocation, r.Variation,
				r.Subject, attrs, r.Timestamp, r.SDKName, r.SDKVersion, r.ReceivedAt, r.Holdout, r.HoldoutVariation})
		}
		if _, err := w.pq.Write(w.pqRows); err != nil {
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

// ReadParquet reads a whole Parquet table (one that Writer wrote, or any
// file with the same columns).
func ReadParquet(r io.ReaderAt, size int64) ([]Row, error) {
	prows, err := parquet.Read[parquetRow](r, size)
	if err != nil {
		return nil, err
	}
	rows := make([]Row, len(prows))
	for i, p := range prows {
		rows[i] = Row{p.EventID, p.Environment, p.Experiment, p.FeatureFlag, p.Allocation, p.Variation,
			p.Subject, json.RawMessage(p.SubjectAttributes), p.Timestamp.UTC(), p.SDKName, p.SDKVersion, p.ReceivedAt.UTC(),
			p.Holdout, p.HoldoutVariation}
	}
	return rows, nil
}
