package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/lines"
	"github.com/allot-dev/allot/internal/ufc"
)

func init() {
	register("assign", "build an assignment table for a CSV of subjects", runAssign)
}

// assignHeader is the header of the table allot assign writes.
const assignHeader = "experiment,subject,variation,allocation,timestamp\n"

func runAssign(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("allot assign", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	flagKey := fs.String("flag", "", "flag (experiment) `key` to assign (required)")
	subjectsPath := fs.String("subjects", "", "CSV `file` of subjects: a header row, then the subject key in the first column and attributes in the others; - for stdin (required)")
	configPath := fs.String("config", "", "UFC configuration `file` (or use --server and --sdk-key)")
	server := fs.String("server", "", "Allot server `URL` to fetch the configuration from, e.g. http://localhost:8080")
	sdkKey := fs.String("sdk-key", "", "SDK `key` for --server (default $ALLOT_SDK_KEY)")
	outPath := fs.String("out", "-", "output `file`: .csv or .parquet (- for CSV on stdout)")
	all := fs.Bool("all", false, "also write subjects that get no assignment (with empty experiment, variation and allocation)")
	var nowFlag timeFlag
	fs.Var(&nowFlag, "now", "assignment `time`, RFC 3339 (default: now)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: allot assign --flag KEY --subjects subjects.csv [--config FILE | --server URL --sdk-key KEY] [--out table.csv|table.parquet] [--all]")
		fmt.Fprintln(e.stderr, "\nWrites one row per assigned subject, in input order:\n  "+strings.TrimSpace(assignHeader))
		fmt.Fprintln(e.stderr, "\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *sdkKey == "" && e.getenv != nil {
		*sdkKey = e.getenv("ALLOT_SDK_KEY")
	}
	switch {
	case *flagKey == "" || *subjectsPath == "" || fs.NArg() > 0:
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--flag and --subjects are required")}
	case (*configPath == "") == (*server == ""):
		return &exitError{code: 2, err: errors.New("give exactly one of --config and --server")}
	case *server != "" && *sdkKey == "":
		return &exitError{code: 2, err: errors.New("--server needs --sdk-key (or $ALLOT_SDK_KEY)")}
	}
	now := nowFlag.UTC()
	if nowFlag.IsZero() {
		now = time.Now().UTC()
	}

	var snap *eval.Snapshot
	var err error
	if *configPath != "" {
		snap, err = loadConfigFile(*configPath)
	} else {
		snap, err = fetchConfig(ctx, *server, *sdkKey)
	}
	if err != nil {
		return err
	}
	f := snap.Flag(*flagKey)
	if f == nil {
		return fmt.Errorf("flag %q is not in the configuration", *flagKey)
	}
	if f.Err != nil {
		return fmt.Errorf("flag %q is malformed: %w", *flagKey, f.Err)
	}

	in := e.stdin
	if *subjectsPath != "-" {
		file, err := os.Open(*subjectsPath)
		if err != nil {
			return fmt.Errorf("--subjects: %w", err)
		}
		defer file.Close()
		in = file
	}
	br := bufio.NewReaderSize(in, 64<<10)
	header, err := readHeader(br)
	if err != nil {
		return fmt.Errorf("--subjects %s: %w", *subjectsPath, err)
	}

	out := e.stdout
	var file *os.File
	asParquet := strings.HasSuffix(*outPath, ".parquet")
	if *outPath != "-" {
		if !strings.HasSuffix(*outPath, ".csv") && !asParquet {
			return &exitError{code: 2, err: fmt.Errorf("--out %s: write a .csv or a .parquet table", *outPath)}
		}
		if file, err = os.Create(*outPath); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer file.Close()
		out = file
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	var sink io.Writer = bw
	var pq *parquetTable
	if asParquet {
		pq = newParquetTable(bw, now)
		sink = pq
	} else {
		bw.WriteString(assignHeader)
	}

	a := &assigner{snap: snap, flag: *flagKey, attrNames: header[1:], all: *all, now: now,
		stamp: now.Format("2006-01-02T15:04:05.000Z07:00")}
	// Only the columns the flag's rules read become attributes: building
	// the others would cost time for nothing.
	a.used = make([]bool, len(a.attrNames))
	for i, name := range a.attrNames {
		a.used[i] = f.UsesAttribute(name)
	}
	// Each allocation's columns, ready to copy: experiment (flag-allocation,
	// as in assignment events) and the allocation key, CSV-quoted if needed.
	for _, al := range f.Allocations {
		a.experiments = append(a.experiments, string(appendCSV(nil, *flagKey+"-"+al.Key)))
		a.allocations = append(a.allocations, string(appendCSV(nil, al.Key)))
	}
	a.pool.New = func() any { return &assignScratch{attrs: make(map[string]any, len(header))} }
	err = lines.Map(ctx, br, sink, lines.Options{Quoted: true, BatchSize: 1024}, a.line)
	if err == nil && pq != nil {
		err = pq.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && file != nil {
		err = file.Close()
	}
	if a.bad.Load() > 0 {
		fmt.Fprintf(e.stderr, "allot assign: skipped %d malformed rows (first: %s)\n", a.bad.Load(), a.firstBad())
	}
	return err
}

func loadConfigFile(path string) (*eval.Snapshot, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	snap, err := eval.Load(data)
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", path, err)
	}
	return snap, nil
}

// fetchConfig downloads an environment's configuration as an SDK does.
func fetchConfig(ctx context.Context, server, key string) (*eval.Snapshot, error) {
	base := strings.TrimRight(server, "/")
	if !strings.HasSuffix(base, "/api") {
		base += "/api"
	}
	u := base + "/flag-config/v1/config?sdkName=allot-cli&apiKey=" + url.QueryEscape(key)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The error text holds the URL, and the URL the key: say less.
		return nil, fmt.Errorf("--server %s: request failed: %w", server, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", server, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("--server %s: %s: %s", server, resp.Status, bytes.TrimSpace(body[:min(len(body), 200)]))
	}
	snap, err := eval.Load(body)
	if err != nil {
		return nil, fmt.Errorf("--server %s: %w", server, err)
	}
	return snap, nil
}

func readHeader(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil && (err != io.EOF || line == "") {
		if err == io.EOF {
			return nil, errors.New("empty file: want a header row")
		}
		return nil, err
	}
	fields, err := splitCSV(nil, []byte(strings.TrimRight(line, "\r\n")), nil)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = string(f)
	}
	names[0] = strings.TrimPrefix(names[0], "\ufeff") // a spreadsheet's byte order mark
	return names, nil
}

type assigner struct {
	snap        *eval.Snapshot
	flag        string
	attrNames   []string
	used        []bool   // attrNames[i] is read by the flag's rules
	experiments []string // CSV field of each allocation's experiment: flag-allocation
	allocations []string // CSV field of each allocation's key
	all         bool
	now         time.Time
	stamp       string
	pool        sync.Pool

	bad     atomic.Int64
	badMu   sync.Mutex
	badLine string
}

type assignScratch struct {
	fields  [][]byte
	unquote []byte
	attrs   map[string]any
}

func (a *assigner) firstBad() string {
	a.badMu.Lock()
	defer a.badMu.Unlock()
	return a.badLine
}

func (a *assigner) reject(line []byte, why string) {
	if a.bad.Add(1) == 1 {
		a.badMu.Lock()
		a.badLine = fmt.Sprintf("%q: %s", line[:min(len(line), 80)], why)
		a.badMu.Unlock()
	}
}

// line assigns one subject row. Strings point into the row's bytes (no
// copy): the engine does not keep them past Evaluate.
func (a *assigner) line(dst, row []byte) []byte {
	if len(row) == 0 {
		return dst
	}
	if bytes.Equal(row, lines.TooLong) {
		a.reject(row, "row too long")
		return dst
	}
	sc := a.pool.Get().(*assignScratch)
	defer a.pool.Put(sc)
	var err error
	sc.unquote = sc.unquote[:0]
	sc.fields, err = splitCSV(sc.fields[:0], row, &sc.unquote)
	if err != nil || len(sc.fields[0]) == 0 {
		if err == nil {
			err = errors.New("empty subject key")
		}
		a.reject(row, err.Error())
		return dst
	}
	clear(sc.attrs)
	for i, f := range sc.fields[1:] {
		if i >= len(a.attrNames) || !a.used[i] || len(f) == 0 {
			continue // an empty cell is an absent attribute
		}
		sc.attrs[a.attrNames[i]] = cellValue(f)
	}
	subject := unsafe.String(&sc.fields[0][0], len(sc.fields[0]))
	r := a.snap.Evaluate(a.flag, subject, sc.attrs, "", a.now)
	if r.Code != eval.Match && !a.all {
		return dst
	}
	if r.Code == eval.Match {
		dst = append(dst, a.experiments[r.Position-1]...)
	}
	dst = append(dst, ',')
	dst = appendCSV(dst, subject)
	dst = append(dst, ',')
	if r.Code == eval.Match {
		dst = appendCSV(dst, r.VariationKey())
		dst = append(dst, ',')
		dst = append(dst, a.allocations[r.Position-1]...)
	} else {
		dst = append(dst, ',')
	}
	dst = append(dst, ',')
	dst = append(dst, a.stamp...)
	return append(dst, '\n')
}

// cellValue types a CSV cell: decimal numbers become float64, anything else
// stays a string. The string shares the cell's memory.
func cellValue(f []byte) any {
	s := unsafe.String(&f[0], len(f))
	if x, ok := ufc.ParseNumberString(s); ok {
		return x
	}
	return s
}

// splitCSV splits one CSV record into fields (RFC 4180: quoted fields may
// hold commas, newlines and doubled quotes). Unquoted fields point into rec;
// quoted ones are unescaped into *scratch, which must not be reused while
// the fields are in use.
func splitCSV(fields [][]byte, rec []byte, scratch *[]byte) ([][]byte, error) {
	if bytes.IndexByte(rec, '"') < 0 {
		for {
			i := bytes.IndexByte(rec, ',')
			if i < 0 {
				return append(fields, rec), nil
			}
			fields = append(fields, rec[:i])
			rec = rec[i+1:]
		}
	}
	if scratch == nil {
		scratch = new([]byte)
	}
	// Reserve enough room that appends never move earlier fields.
	if cap(*scratch)-len(*scratch) < len(rec) {
		*scratch = make([]byte, 0, len(rec)*2)
	}
	for {
		if len(rec) > 0 && rec[0] == '"' {
			start := len(*scratch)
			i := 1
			for {
				j := bytes.IndexByte(rec[i:], '"')
				if j < 0 {
					return fields, errors.New("unterminated quoted field")
				}
				*scratch = append(*scratch, rec[i:i+j]...)
				i += j + 1
				if i < len(rec) && rec[i] == '"' {
					*scratch = append(*scratch, '"')
					i++
					continue
				}
				break
			}
			fields = append(fields, (*scratch)[start:len(*scratch):len(*scratch)])
			rec = rec[i:]
			if len(rec) == 0 {
				return fields, nil
			}
			if rec[0] != ',' {
				return fields, errors.New("text after a closing quote")
			}
			rec = rec[1:]
			continue
		}
		field, rest, more := bytes.Cut(rec, []byte{','})
		if bytes.IndexByte(field, '"') >= 0 {
			return fields, errors.New("quote inside an unquoted field")
		}
		fields = append(fields, field)
		if !more {
			return fields, nil
		}
		rec = rest
	}
}

// appendCSV writes s as a CSV field, quoting it when needed.
func appendCSV(dst []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == ',' || c == '"' || c == '\r' || c == '\n' {
			plain = false
			break
		}
	}
	if plain {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// AssignRow is a row of the table allot assign writes, in Parquet.
type AssignRow struct {
	Experiment string    `parquet:"experiment,dict"`
	Subject    string    `parquet:"subject"`
	Variation  string    `parquet:"variation,dict"`
	Allocation string    `parquet:"allocation,dict"`
	Timestamp  time.Time `parquet:"timestamp,timestamp(millisecond)"`
}

// parquetTable receives the CSV rows lines.Map produces, whole batches at a
// time and in order, and writes them as Parquet.
type parquetTable struct {
	pw    *parquet.GenericWriter[AssignRow]
	stamp time.Time
	rows  []AssignRow
}

func newParquetTable(w io.Writer, stamp time.Time) *parquetTable {
	return &parquetTable{pw: parquet.NewGenericWriter[AssignRow](w, parquet.Compression(&parquet.Zstd)), stamp: stamp.Truncate(time.Millisecond)}
}

func (p *parquetTable) Write(b []byte) (int, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = 5
	r.ReuseRecord = true
	p.rows = p.rows[:0]
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		p.rows = append(p.rows, AssignRow{rec[0], rec[1], rec[2], rec[3], p.stamp})
	}
	if _, err := p.pw.Write(p.rows); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *parquetTable) Close() error { return p.pw.Close() }
