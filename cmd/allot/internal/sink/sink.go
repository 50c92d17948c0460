// Package sink seals the assignment table into Parquet files in a
// directory, continuously (allot serve --sink DIR): files partitioned by
// environment and day, environment=E/date=YYYY-MM-DD/part-FIRST-LAST.parquet,
// where FIRST and LAST are the event sequences of the file's first and last
// rows (zero-padded, so names sort in sequence order).
//
// Exactly once across crashes: a seal reads the rows after the sequence the
// database records for this sink, writes each file to a temporary name,
// fsyncs it, renames it and fsyncs its directory, and only then records the
// new sequence. A crash before the record leaves files beyond the recorded
// sequence; on start, Run rewrites that same range, which gives the same
// names and the same bytes (the rows, their order and the encoding are
// fixed by the sequence), and removes those it did not rewrite.
package sink

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
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
	// Dir is the directory the files go into; created if missing.
	Dir string
	// Interval is how often rows waiting are sealed; default DefaultInterval.
	Interval time.Duration
	// Rows seals as soon as this many rows wait, and is the most rows one
	// file set holds; default DefaultRows, at most MaxRows.
	Rows int
	Log  *slog.Logger
}

// Dir is a sink to a local directory.
type Dir struct {
	st   Store
	cfg  Config
	name string // the key of its row in the sinks table
}

// New returns a sink of st's assignment table into cfg.Dir.
func New(st Store, cfg Config) (*Dir, error) {
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
	abs, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	cfg.Dir = abs
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	return &Dir{st: st, cfg: cfg, name: "file://" + filepath.ToSlash(abs)}, nil
}

// Name is the sink's key in the database: file:// and its absolute path.
func (d *Dir) Name() string { return d.name }

// Run recovers from an interrupted seal, then seals every Interval, or
// sooner when Rows rows wait, until ctx ends. Errors are logged and the
// seal retried at the next turn: nothing is recorded that is not on disk.
func (d *Dir) Run(ctx context.Context) {
	check := min(d.cfg.Interval, time.Second)
	t := time.NewTicker(check)
	defer t.Stop()
	recovered := false
	last := time.Now()
	for {
		if !recovered {
			if err := d.Recover(ctx); err != nil {
				if ctx.Err() == nil {
					d.cfg.Log.Error("sink: recovery failed; retrying", "dir", d.cfg.Dir, "err", err)
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
					d.cfg.Log.Error("sink: seal failed; retrying", "dir", d.cfg.Dir, "err", err)
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
func (d *Dir) full(ctx context.Context) bool {
	sealed, err := d.st.SinkSealed(ctx, d.name)
	if err != nil {
		return false
	}
	top, err := d.st.AssignmentHorizon(ctx, false)
	return err == nil && top-sealed >= int64(d.cfg.Rows)
}

// Seal writes the rows after the recorded sequence (at most Rows) into
// files and records the new sequence. It returns how many rows it sealed.
func (d *Dir) Seal(ctx context.Context) (int, error) {
	sealed, err := d.st.SinkSealed(ctx, d.name)
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
	if err := d.st.SetSinkSealed(ctx, d.name, end); err != nil {
		return 0, err
	}
	if n > 0 {
		d.cfg.Log.Info("sink: sealed", "dir", d.cfg.Dir, "rows", n, "through", end)
	}
	return n, nil
}

// Recover removes temporary files and rewrites the files an interrupted
// seal left beyond the recorded sequence, then records their end.
func (d *Dir) Recover(ctx context.Context) error {
	sealed, err := d.st.SinkSealed(ctx, d.name)
	if err != nil {
		return err
	}
	var orphans []string
	var end int64
	err = filepath.WalkDir(d.cfg.Dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if strings.HasSuffix(e.Name(), tmpSuffix) {
			return os.Remove(path)
		}
		first, last, ok := parseName(e.Name())
		if ok && first > sealed {
			orphans = append(orphans, path)
			end = max(end, last)
		}
		return nil
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
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("sink: recover: %w", err)
			}
		}
	}
	d.cfg.Log.Info("sink: rewrote the files of an interrupted seal", "dir", d.cfg.Dir, "files", len(orphans), "through", end)
	return d.st.SetSinkSealed(ctx, d.name, end)
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

// PartitionDir is the directory, relative to the sink's, of an
// environment's rows of one day (UTC, by event timestamp). The environment
// is escaped as a path segment, so any key stays one directory.
func PartitionDir(environment string, day time.Time) string {
	env := url.PathEscape(environment)
	switch env {
	case "":
		env = "__HIVE_DEFAULT_PARTITION__"
	case ".", "..":
		env = strings.Repeat("%2E", len(env))
	}
	return filepath.Join("environment="+env, "date="+day.UTC().Format(time.DateOnly))
}

type partKey struct {
	env string
	day string
}

// part is one file being written.
type part struct {
	dir         string
	f           *os.File
	bw          *bufio.Writer
	w           *table.Writer
	first, last int64
	rows        []table.Row // this page's rows for the file
}

// write writes the rows after < seq <= top (at most limit) into one file
// per partition. It returns how many rows it wrote, the sequence the files
// cover through (top, or the last row's when the limit cut it short), and
// the paths it wrote.
func (d *Dir) write(ctx context.Context, after, top int64, limit int) (int, int64, map[string]bool, error) {
	parts := map[partKey]*part{}
	var order []*part
	defer func() { // on error: drop the temporary files
		for _, p := range order {
			if p.f != nil {
				p.f.Close()
				os.Remove(p.f.Name())
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
				dir := filepath.Join(d.cfg.Dir, PartitionDir(r.Environment, r.Timestamp))
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				f, err := os.CreateTemp(dir, ".part-*"+tmpSuffix)
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
	dirs := map[string]bool{}
	for _, p := range order {
		if err := p.w.Close(ctx); err != nil {
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		if err := p.bw.Flush(); err != nil {
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		if err := p.f.Sync(); err != nil {
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		tmp := p.f.Name()
		err := p.f.Close()
		p.f = nil
		if err != nil {
			os.Remove(tmp)
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		final := filepath.Join(p.dir, FileName(p.first, p.last))
		if err := os.Rename(tmp, final); err != nil {
			os.Remove(tmp)
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
		written[final] = true
		// The file's directory holds the rename; its parents hold the
		// directories a new partition made.
		dirs[p.dir], dirs[filepath.Dir(p.dir)], dirs[d.cfg.Dir] = true, true, true
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return 0, 0, nil, fmt.Errorf("sink: %w", err)
		}
	}
	end := top
	if limit > 0 && n >= limit {
		end = lastSeq
	}
	return n, end, written, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
