package httpapi

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/allot-dev/allot/internal/srm"
	"github.com/allot-dev/allot/internal/store"
)

// AssignmentColumns are the columns of an exported assignment table, in
// order (CSV header; JSON lines use the same names).
var AssignmentColumns = []string{"event_id", "environment", "experiment", "feature_flag", "allocation", "variation",
	"subject", "subject_attributes", "timestamp", "sdk_name", "sdk_version", "received_at"}

// exportFilter reads the filter of GET /api/v1/assignments.
func exportFilter(r *http.Request) (store.AssignmentFilter, error) {
	q := r.URL.Query()
	f := store.AssignmentFilter{Environment: q.Get("environment"), FeatureFlag: q.Get("flag"), Experiment: q.Get("experiment")}
	return f, timeRange(q, &f)
}

// timeRange reads the from and to parameters (RFC 3339 times or dates) into f.
func timeRange(q url.Values, f *store.AssignmentFilter) error {
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		v := q.Get(p.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return store.Invalid(p.name, "%q is not an RFC 3339 time or a date", v)
			}
		}
		*p.t = t
	}
	return nil
}

// exportAssignments streams the assignment table as CSV, JSON lines or
// Parquet: GET /api/v1/assignments?environment=&flag=&experiment=&from=&to=&format=csv|jsonl|parquet
func (s *Server) exportAssignments(w http.ResponseWriter, r *http.Request) error {
	f, err := exportFilter(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csv"
	}
	if format != "csv" && format != "jsonl" && format != "parquet" {
		return store.Invalid("format", "%q is not csv, jsonl or parquet", format)
	}
	name := "assignments"
	if f.FeatureFlag != "" {
		name += "-" + f.FeatureFlag
	}
	// A streaming export holds a database connection until it ends: a few
	// at a time, so that ingestion and the API keep theirs.
	select {
	case s.exports <- struct{}{}:
		defer func() { <-s.exports }()
	default:
		w.Header().Set("Retry-After", "5")
		return store.Errorf(store.EUNAVAILABLE, "%d exports are running; retry later", cap(s.exports))
	}
	// A large table takes longer than the server's write timeout.
	http.NewResponseController(w).SetWriteDeadline(time.Time{})

	ew := &exportWriter{w: w}
	bw := bufio.NewWriterSize(ew, 64<<10)
	err = s.writeExport(w.Header(), bw, r, f, format, name)
	if err == nil {
		err = bw.Flush()
	}
	switch {
	case err == nil:
		return nil
	case !ew.sent:
		// Nothing went out: answer with the error, not a partial table.
		w.Header().Del("Content-Disposition")
		return err
	}
	// The table is partly sent: abort the connection so the client sees a
	// broken transfer rather than a table that merely looks short.
	s.log.Error("export failed midway", "err", err)
	panic(http.ErrAbortHandler)
}

// exportWriter remembers whether anything of an export was sent.
type exportWriter struct {
	w    http.ResponseWriter
	sent bool
}

func (e *exportWriter) Write(p []byte) (int, error) {
	e.sent = true
	return e.w.Write(p)
}

// writeExport writes the table to bw. The headers it sets go out with the
// first bytes that leave bw.
func (s *Server) writeExport(hdr http.Header, bw *bufio.Writer, r *http.Request, f store.AssignmentFilter, format, name string) error {
	hdr.Set("Cache-Control", "no-store")
	if format == "parquet" {
		hdr.Set("Content-Type", "application/vnd.apache.parquet")
		hdr.Set("Content-Disposition", `attachment; filename="`+name+`.parquet"`)
		return s.exportParquet(bw, r, f)
	}
	if format == "csv" {
		hdr.Set("Content-Type", "text/csv; charset=utf-8")
		hdr.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		cw := csv.NewWriter(bw)
		cw.Write(AssignmentColumns)
		rec := make([]string, len(AssignmentColumns))
		return s.db.Assignments(r.Context(), f, func(a *store.Assignment) error {
			rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6] = a.EventID, a.Environment, a.Experiment, a.FeatureFlag, a.Allocation, a.Variation, a.Subject
			rec[7] = string(a.SubjectAttributes)
			rec[8] = a.Timestamp.Format(time.RFC3339Nano)
			rec[9], rec[10] = a.SDKName, a.SDKVersion
			rec[11] = a.ReceivedAt.Format(time.RFC3339Nano)
			cw.Write(rec)
			cw.Flush()
			return cw.Error()
		})
	}
	hdr.Set("Content-Type", "application/x-ndjson")
	hdr.Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
	enc := json.NewEncoder(bw)
	return s.db.Assignments(r.Context(), f, func(a *store.Assignment) error {
		return enc.Encode(exportRow{a.EventID, a.Environment, a.Experiment, a.FeatureFlag, a.Allocation, a.Variation,
			a.Subject, a.SubjectAttributes, a.Timestamp, a.SDKName, a.SDKVersion, a.ReceivedAt})
	})
}

// exportRow is one JSON line of an export, named like the CSV columns.
type exportRow struct {
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
}

// ParquetRow is one row of an exported assignment table in Parquet: the
// same columns, subject_attributes as JSON text, times in microseconds UTC.
type ParquetRow struct {
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
}

// exportParquet streams rows into a Parquet file, a row group every 64k
// rows so memory stays bounded.
func (s *Server) exportParquet(w io.Writer, r *http.Request, f store.AssignmentFilter) error {
	pw := parquet.NewGenericWriter[ParquetRow](w, parquet.Compression(&parquet.Zstd))
	buf := make([]ParquetRow, 0, 1024)
	inGroup := 0
	flush := func() error {
		if _, err := pw.Write(buf); err != nil {
			return err
		}
		inGroup += len(buf)
		buf = buf[:0]
		if inGroup >= 64<<10 {
			inGroup = 0
			return pw.Flush()
		}
		return nil
	}
	err := s.db.Assignments(r.Context(), f, func(a *store.Assignment) error {
		buf = append(buf, ParquetRow{a.EventID, a.Environment, a.Experiment, a.FeatureFlag, a.Allocation, a.Variation,
			a.Subject, string(a.SubjectAttributes), a.Timestamp, a.SDKName, a.SDKVersion, a.ReceivedAt})
		if len(buf) == cap(buf) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return err
	}
	return pw.Close()
}

// SummaryResponse is the answer of GET .../allocations/{alloc}/summary: the
// allocation's assignment counts and, for an experiment, the sample ratio
// mismatch check against its configured weights.
type SummaryResponse struct {
	Environment string `json:"environment"`
	Flag        string `json:"flag"`
	Allocation  string `json:"allocation"`
	Experiment  string `json:"experiment"`
	store.AssignmentSummary
	// Weights are the configured weights (percent) of an experiment.
	Weights map[string]float64 `json:"weights,omitempty"`
	// SRM is the chi-square test of the subjects seen only in one variation
	// against Weights; absent when it cannot be computed (SRMNote says why).
	SRM     *srm.Result `json:"srm,omitempty"`
	SRMNote string      `json:"srmNote,omitempty"`
}

func (s *Server) assignmentSummary(w http.ResponseWriter, r *http.Request) error {
	env, flag, alloc := r.PathValue("env"), r.PathValue("flag"), r.PathValue("alloc")
	f := store.AssignmentFilter{Environment: env, FeatureFlag: flag, Allocation: alloc}
	if err := timeRange(r.URL.Query(), &f); err != nil {
		return err
	}
	sum, err := s.db.SummarizeAssignments(r.Context(), f)
	if err != nil {
		return err
	}
	resp := SummaryResponse{Environment: env, Flag: flag, Allocation: alloc, Experiment: flag + "-" + alloc, AssignmentSummary: sum}
	settings, err := s.core.FlagSettings(r.Context(), env, flag)
	if err != nil && store.ErrorCode(err) != store.ENOTFOUND {
		return err
	}
	var weights []store.Weight
	for _, a := range settings.Allocations {
		if a.Key == alloc && a.Type == store.Experiment {
			weights = a.Weights
		}
	}
	switch {
	case len(weights) == 0:
		resp.SRMNote = "not an experiment of this flag: no configured weights to test against"
	default:
		resp.Weights = map[string]float64{}
		ws := make([]srm.Weight, len(weights))
		for i, wt := range weights {
			resp.Weights[wt.Variation] = float64(wt.Weight) / 100
			ws[i] = srm.Weight{Variation: wt.Variation, Weight: float64(wt.Weight)}
		}
		res, err := srm.TestVariations(ws, sum.Variations)
		if err != nil {
			resp.SRMNote = err.Error()
		} else {
			resp.SRM = &res
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
