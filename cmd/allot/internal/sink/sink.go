// Package sink seals the assignment table into Parquet files, continuously
// (allot serve --sink DIR_OR_URL), into a local directory or an
// S3-compatible bucket: files partitioned by environment and day,
// environment=E/date=YYYY-MM-DD/part-FIRST-LAST.parquet, where FIRST and
// LAST are the event sequences of the file's first and last rows
// (zero-padded, so names sort in sequence order).
//
// Exactly once across crashes: a seal reads the rows after the sequence the
// database records for this sink, publishes each file whole (a directory:
// written to a temporary name, fsynced, renamed, its directory fsynced; a
// bucket: staged in a local temporary file, then one PUT, which S3 makes
// visible whole or not at all), and only then records the new sequence. A
// crash before the record leaves files beyond the recorded sequence; on
// start, Run rewrites that same range, which gives the same names and the
// same bytes (the rows, their order and the encoding are fixed by the
// sequence), so overwriting an object with its own name is harmless, and
// removes those it did not rewrite.
package sink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/table"
)

// Store is what a sink needs of the database (*store.DB implements it).
type Store interface {
	SinkSealed(ctx context.Context, name string) (int64, error)
	SetSinkSealed(ctx context.Context, name string, seq int64) error
	AssignmentHorizon(ctx context.Context, exact bool) (int64, error)
	AssignmentSeqPages(ctx context.Context, after, upTo int64, limit int, fn func(seqs []int64, rows []table.Row) error) error
}

// Defaults and limits.
const (
	DefaultInterval = time.Minute
	DefaultRows     = 1_000_000
	// MaxRows bounds Rows: a seal holds one open file per partition and
	// writes at most Rows rows, so that a seal stays short.
	MaxRows = 10_000_000
)

// Config configures a sink.
type Config struct {
	// Dir is where the files go: a local directory (created if missing),
	// or an S3-compatible bucket as s3://BUCKET[/PREFIX][?endpoint=URL&region=R]
	// (ParseS3URL; credentials from the standard AWS environment).
	Dir string
	// Interval is how often rows waiting are sealed; default DefaultInterval.
	Interval time.Duration
	// Rows seals as soon as this many rows wait, and is the most rows one
	// file set holds; default DefaultRows, at most MaxRows.
	Rows int
	Log  *slog.Logger
}

// target is where a sink's files go: a local directory or a bucket. Paths
// are slash-separated and relative to the target's root.
type target interface {
	// key is the sink's key in the sinks table.
	key() string
	// stage returns a new local file for the part to be published at rel.
	stage(rel string) (*os.File, error)
	// publish makes the staged file, written in full, visible whole at rel
	// and closes it; done makes every publish so far durable.
	publish(ctx context.Context, f *os.File, rel string) error
	done(ctx context.Context) error
	// discard drops a staged file that will not be published.
	discard(f *os.File)
	// list calls fn with every file under the root (after removing what
	// an interrupted seal left staged there); remove deletes one.
	list(ctx context.Context, fn func(rel string)) error
	remove(ctx context.Context, rel string) error
}

// Sink seals an assignment table into a target.
type Sink struct {
	st  Store
	cfg Config
	t   target
}

// New returns a sink of st's assignment table into cfg.Dir.
func New(st Store, cfg Config) (*Sink, error) {
	if cfg.Dir == "" {
		return nil, errors.New("sink: no directory")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Rows <= 0 {
		cfg.Rows = DefaultRows
	}
	if cfg.Rows > MaxRows {
		return nil, fmt.Errorf("sink: %d rows per seal is over the limit of %d", cfg.Rows, MaxRows)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	var t target
	var err error
	if strings.HasPrefix(cfg.Dir, "s3://") {
		t, err = newS3(cfg.Dir)
	} else {
		t, err = newLocal(cfg.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return &Sink{st: st, cfg: cfg, t: t}, nil
}

// Name is the sink's key in the database: file:// and the directory's
// absolute path, or the bucket's s3:// URL (bucket, prefix and endpoint).
func (d *Sink) Name() string { return d.t.key() }

// Run recovers from an interrupted seal, then seals every Interval, or
// sooner when Rows rows wait, until ctx ends. Errors are logged and the
// seal retried at the next turn: nothing is recorded that is not stored.
func (d *Sink) Run(ctx context.Context) {
	check := min(d.cfg.Interval, time.Second)
	t := time.NewTicker(check)
	defer t.Stop()
	recovered := false
	last := time.Now()
	for {
		if !recovered {
			if err := d.Recover(ctx); err != nil {
				if ctx.Err() == nil {
					d.cfg.Log.Error("sink: recovery failed; retrying", "sink", d.Name(), "err", err)
				}
			} else {
				recovered = true
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !recovered || (time.Since(last) < d.cfg.Interval && !d.full(ctx)) {
			continue
		}
		last = time.Now()
		for {
			n, err := d.Seal(ctx)
			if err != nil {
				if ctx.Err() == nil {
					d.cfg.Log.Error("sink: seal failed; retrying", "sink", d.Name(), "err", err)
				}
				// The files may be written and the record not: recover
				// (rewrite that range) before sealing anything else, or
				// the next seal would write the rows again beside them.
				recovered = false
				break
			}
			if n < d.cfg.Rows {
				break
			}
		}
	}
}

// full reports whether about Rows rows wait (sequences may have gaps, so
// it errs towards sealing early).
func (d *Sink) full(ctx context.Context) bool {
	sealed, err := d.st.SinkSealed(ctx, d.Name())
	if err != nil {
		return false
	}
	top, err := d.st.AssignmentHorizon(ctx, false)
	return err == nil && top-sealed >= int64(d.cfg.Rows)
}

// Seal writes the rows after the recorded sequence (at most Rows) into
// files and records the new sequence. It returns how many rows it sealed.
func (d *Sink) Seal(ctx context.Context) (int, error) {
	sealed, err := d.st.SinkSealed(ctx, d.Name())
	if err != nil {
		return 0, err
	}
	top, err := d.st.AssignmentHorizon(ctx, true)
	if err != nil {
		return 0, err
	}
	if top <= sealed {
		return 0, nil
	}
	n, end, _, err := d.write(ctx, sealed, top, d.cfg.Rows)
	if err != nil {
		return 0, err
	}
	if err := d.st.SetSinkSealed(ctx, d.Name(), end); err != nil {
		return 0, err
	}
	if n > 0 {
		d.cfg.Log.Info("sink: sealed", "sink", d.Name(), "rows", n, "through", end)
	}
	return n, nil
}

// Recover removes staged files and rewrites the files an interrupted seal
// left beyond the recorded sequence, then records their end. It lists the
// whole target: it runs at start and after a failed seal only.
func (d *Sink) Recover(ctx context.Context) error {
	sealed, err := d.st.SinkSealed(ctx, d.Name())
	if err != nil {
		return err
	}
	var orphans []string
	var end int64
	err = d.t.list(ctx, func(rel string) {
		first, last, ok := parseName(path.Base(rel))
		if ok && first > sealed {
			orphans = append(orphans, rel)
			end = max(end, last)
		}
	})
	if err != nil {
		return fmt.Errorf("sink: recover: %w", err)
	}
	if len(orphans) == 0 {
		return nil
	}
	// The interrupted seal covered (sealed, top] with top >= end, and every
	// row in it was committed: rewriting (sealed, end] reads the same rows.
	_, _, written, err := d.write(ctx, sealed, end, 0)
	if err != nil {
		return err
	}
	for _, p := range orphans {
		if !written[p] { // its rows are gone (retention): so goes the file
			if err := d.t.remove(ctx, p); err != nil {
				return fmt.Errorf("sink: recover: %w", err)
			}
		}
	}
	d.cfg.Log.Info("sink: rewrote the files of an interrupted seal", "sink", d.Name(), "files", len(orphans), "through", end)
	return d.st.SetSinkSealed(ctx, d.Name(), end)
}

const tmpSuffix = ".tmp"

var nameRE = regexp.MustCompile(`^part-(\d{20})-(\d{20})\.parquet$`)

func parseName(name string) (first, last int64, ok bool) {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return 0, 0, false
	}
	first, err1 := strconv.ParseInt(m[1], 10, 64)
	last, err2 := strconv.ParseInt(m[2], 10, 64)
	return first, last, err1 == nil && err2 == nil
}

// FileName is the name of the file holding the rows first through last.
func FileName(first, last int64) string { return fmt.Sprintf("part-%020d-%020d.parquet", first, last) }

// PartitionDir is the directory (slash-separated), relative to the sink's
// root, of an environment's rows of one day (UTC, by event timestamp). The
// environment is escaped as a path segment, so any key stays one directory.
func PartitionDir(environment string, day time.Time) string {
	env := url.PathEscape(environment)
	switch env {
	case "":
		env = "__HIVE_DEFAULT_PARTITION__"
	case ".", "..":
		env = strings.Repeat("%2E", len(env))
	}
	return path.Join("environment="+env, "date="+day.UTC().Format(time.DateOnly))
}

type partKey struct {
	env string
	day string
}

// part is one file being written.
type part struct {
	dir         string // relative to the root
	f           *os.File
	bw          *bufio.Writer
	w           *table.Writer
	first, last int64
	rows        []table.Row // this page's rows for the file
}

// write writes the rows after < seq <= top (at most limit) into one file
// per partition. It returns how many rows it wrote, the sequence the files
// cover through (top, or the last row's when the limit cut it short), and
// the paths (relative) it wrote.
func (d *Sink) write(ctx context.Context, after, top int64, limit int) (int, int64, map[string]bool, error) {
	parts := map[partKey]*part{}
	var order []*part
	defer func() { // on error: drop the staged files
		for _, p := range order {
			if p.f != nil {
				d.t.discard(p.f)
			}
		}
	}()
	n := 0
	var lastSeq int64
	err := d.st.AssignmentSeqPages(ctx, after, top, limit, func(seqs []int64, rows []table.Row) error {
		var touched []*part
		for i := range rows {
			r := &rows[i]
			k := partKey{r.Environment, r.Timestamp.UTC().Format(time.DateOnly)}
			p := parts[k]
			if p == nil {
				dir := PartitionDir(r.Environment, r.Timestamp)
				f, err := d.t.stage(dir)
				if err != nil {
					return err
				}
				bw := bufio.NewWriterSize(f, 1<<20)
				p = &part{dir: dir, f: f, bw: bw, w: table.NewWriter(bw, table.Parquet), first: seqs[i]}
				parts[k] = p
				order = append(order, p)
			}
			if len(p.rows) == 0 {
				touched = append(touched, p)
			}
			p.rows = append(p.rows, *r)
			p.last = seqs[i]
		}
		for _, p := range touched {
			if err := p.w.Write(ctx, p.rows); err != nil {
				return err
			}
			p.rows = p.rows[:0]
		}
		n += len(rows)
		lastSeq = seqs[len(seqs)-1]
		return nil
	})
	if err != nil {
		return 0, 0, nil, fmt.Errorf("sink: %w", err)
	}
	written := make(map[string]bool, len(order))
	for _, p := range order {
		if err := p.w.Close(ctx); err != nil {
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		if err := p.bw.Flush(); err != nil {
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		rel := path.Join(p.dir, FileName(p.first, p.last))
		f := p.f
		p.f = nil // publish closes it, or discards it on error
		if err := d.t.publish(ctx, f, rel); err != nil {
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		written[rel] = true
	}
	if err := d.t.done(ctx); err != nil {
		return 0, 0, nil, fmt.Errorf("sink: %w", err)
	}
	end := top
	if limit > 0 && n >= limit {
		end = lastSeq
	}
	return n, end, written, nil
}
