// Package export streams the assignment table and the first-exposure table
// over HTTP as CSV, JSON lines or Parquet: the one code path behind the
// API's GET /api/v1/assignments and the web UI's downloads.
package export

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// Request is one export: which table, which rows, which format.
type Request struct {
	Filter store.AssignmentFilter
	// FirstExposures selects the first-exposure table (one row per subject
	// and allocation; filtered by environment, flag and allocation only).
	FirstExposures bool
	Format         table.Format
}

// Filename is the name a download gets: the table, the flag (and the
// allocation, when one is selected) and the format's extension.
func (q Request) Filename() string {
	name := "assignments"
	if q.FirstExposures {
		name = "first-exposures"
	}
	if q.Filter.FeatureFlag != "" {
		name += "-" + q.Filter.FeatureFlag
	}
	switch {
	case q.Filter.Allocation != "":
		name += "-" + q.Filter.Allocation
	case q.Filter.Experiment != "":
		// An experiment's key is usually its flag's key, "-" and the
		// allocation's: the flag is named once.
		name += "-" + strings.TrimPrefix(q.Filter.Experiment, q.Filter.FeatureFlag+"-")
	}
	return name + q.Format.Ext()
}

// ParseTable reads the table and format parameters (table=assignments or
// first-exposures, format=csv, jsonl or parquet; defaults assignments and
// csv) into q.
func ParseTable(v url.Values, q *Request) error {
	switch t := v.Get("table"); t {
	case "", "assignments":
	case "first-exposures":
		q.FirstExposures = true
	default:
		return core.Invalid("table", "%q is not assignments or first-exposures", t)
	}
	name := v.Get("format")
	if name == "" {
		name = "csv"
	}
	f, err := table.ParseFormat(name)
	if err != nil {
		return core.Invalid("format", "%s", err)
	}
	q.Format = f
	return nil
}

// TimeRange reads the from and to parameters (RFC 3339 times or dates)
// into f.
func TimeRange(v url.Values, f *store.AssignmentFilter) error {
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		s := v.Get(p.name)
		if s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, s); err != nil {
				return core.Invalid(p.name, "%q is not an RFC 3339 time or a date", s)
			}
		}
		*p.t = t
	}
	return nil
}

// Stall is how long an export may wait on a client that reads nothing.
// The deadline moves on with every page sent, so a large table takes as
// long as it needs while a stalled client is cut off.
const Stall = time.Minute

// Exporter streams exports, a few at a time: each holds a database
// connection while it reads a page, and ingestion and the rest of the
// server need theirs. One Exporter serves every front end of a process,
// so the bound holds across them.
type Exporter struct {
	db    *store.DB
	log   *slog.Logger
	slots chan struct{}
}

// DefaultSlots is how many exports may stream at once in a process.
const DefaultSlots = 2

// New returns an Exporter over db that runs at most slots exports at once.
func New(db *store.DB, log *slog.Logger, slots int) *Exporter {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Exporter{db: db, log: log, slots: make(chan struct{}, max(slots, 1))}
}

// Serve streams the table q selects to w as an attachment. It reads the
// store a page at a time (no read snapshot is held while the client reads)
// and writes each page through the table's writers, so memory stays flat
// whatever the table's size. An error before anything was sent is
// returned for the caller to answer in its own way; an error after aborts
// the connection (the client sees a broken transfer, never a table that
// merely looks short).
func (e *Exporter) Serve(w http.ResponseWriter, r *http.Request, q Request) error {
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	default:
		w.Header().Set("Retry-After", "5")
		return core.Errorf(core.EUNAVAILABLE, "%d exports are running; retry later", cap(e.slots))
	}
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("Content-Type", q.Format.ContentType())
	hdr.Set("Content-Disposition", ContentDisposition(q.Filename()))

	ew := &sentWriter{w: w, rc: http.NewResponseController(w)}
	bw := bufio.NewWriterSize(ew, 64<<10)
	ctx := r.Context()
	var err error
	var closeSink func(context.Context) error
	if q.FirstExposures {
		sink := table.NewFirstExposureWriter(bw, q.Format)
		closeSink = sink.Close
		err = e.db.FirstExposurePages(ctx, q.Filter, func(page []table.FirstExposure) error {
			ew.rc.SetWriteDeadline(time.Now().Add(Stall))
			return sink.Write(ctx, page)
		})
	} else {
		sink := table.NewWriter(bw, q.Format)
		closeSink = sink.Close
		err = e.db.AssignmentPages(ctx, q.Filter, func(page []table.Row) error {
			ew.rc.SetWriteDeadline(time.Now().Add(Stall))
			return sink.Write(ctx, page)
		})
	}
	if err == nil {
		ew.rc.SetWriteDeadline(time.Now().Add(Stall))
		if err = closeSink(ctx); err == nil {
			err = bw.Flush()
		}
	}
	switch {
	case err == nil:
		return nil
	case !ew.sent:
		// Nothing went out: answer with the error, not a partial table.
		hdr.Del("Content-Disposition")
		hdr.Del("Content-Type")
		return err
	}
	e.log.Error("export failed midway", "err", err)
	panic(http.ErrAbortHandler)
}

// ContentDisposition names an attachment as RFC 6266 says: filename* holds
// the name, percent-encoded UTF-8; filename, for old clients, holds it with
// every character outside a safe set replaced, so that nothing the caller
// put in the name (a quote, a semicolon) can end the parameter.
func ContentDisposition(name string) string {
	safe := []byte(name)
	for i, c := range safe {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			safe[i] = '_'
		}
	}
	var enc strings.Builder
	for i := 0; i < len(name); i++ {
		// attr-char of RFC 8187; everything else is percent-encoded.
		c := name[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0 {
			enc.WriteByte(c)
		} else {
			fmt.Fprintf(&enc, "%%%02X", c)
		}
	}
	return `attachment; filename="` + string(safe) + `"; filename*=UTF-8''` + enc.String()
}

// sentWriter remembers whether anything of an export was sent.
type sentWriter struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	sent bool
}

func (s *sentWriter) Write(p []byte) (int, error) {
	s.sent = true
	return s.w.Write(p)
}
