package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/allot-dev/allot/cmd/allot/internal/lines"
	"github.com/allot-dev/allot/cmd/allot/internal/table"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

func init() {
	register("assign", "build an assignment table for a CSV of subjects", runAssign)
}

// assignSDKName fills the sdk_name column of the rows allot assign writes
// (event_id and environment stay empty: no SDK sent them).
const assignSDKName = "allot assign"

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
		fmt.Fprintln(e.stderr, "\nWrites one row per assigned subject, in input order, with the columns of the assignment table (as allot export):\n  "+strings.Join(table.Columns, ","))
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
	format := table.CSV
	if asParquet {
		format = table.Parquet
	}
	// The rows go through the table's writers, as an export's do. For CSV,
	// each worker encodes its rows with the table's CSV encoder and the
	// batches are copied out in order; for Parquet, workers pass rows in a
	// compact binary form to one columnar writer.
	tw := table.NewWriter(bw, format)
	var sink io.Writer = bw
	var pq *parquetRows
	if asParquet {
		pq = &parquetRows{w: tw, flag: *flagKey, now: table.Micro(now)}
		sink = pq
	} else if err := tw.Write(ctx, nil); err != nil { // the header
		return err
	}

	a := &assigner{snap: snap, flag: *flagKey, attrNames: header[1:], all: *all, now: table.Micro(now), parquet: asParquet}
	// Only the columns the flag's rules read become attributes for the
	// engine: building the others would cost time for nothing. Every
	// column goes into subject_attributes.
	a.used = make([]bool, len(a.attrNames))
	for i, name := range a.attrNames {
		a.used[i] = f.UsesAttribute(name)
	}
	for _, al := range f.Allocations {
		a.experiments = append(a.experiments, *flagKey+"-"+al.Key)
		a.allocations = append(a.allocations, al.Key)
	}
	if pq != nil {
		pq.experiments, pq.allocations = a.experiments, a.allocations
	}
	a.pool.New = func() any { return &assignScratch{attrs: make(map[string]any, len(header))} }
	err = lines.Map(ctx, br, sink, lines.Options{Quoted: true, BatchSize: 1024}, a.line)
	if err == nil {
		err = tw.Close(ctx)
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
	experiments []string // each allocation's experiment: flag-allocation
	allocations []string // each allocation's key
	all         bool
	now         time.Time // microseconds, UTC
	parquet     bool      // line writes binary records for parquetRows
	pool        sync.Pool

	bad     atomic.Int64
	badMu   sync.Mutex
	badLine string
}

type assignScratch struct {
	fields  [][]byte
	unquote []byte
	attrs   map[string]any
	json    []byte // subject_attributes
	csv     table.CSVEncoder
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
	sc.json = appendAttributes(sc.json[:0], a.attrNames, sc.fields[1:])
	pos, variation := 0, ""
	if r.Code == eval.Match {
		pos, variation = int(r.Position), r.VariationKey()
	}
	holdout, holdoutVariation := holdoutOf(&r)
	if a.parquet {
		return appendRecord(dst, pos, variation, subject, sc.json, holdout, holdoutVariation)
	}
	out := table.Row{FeatureFlag: a.flag, Variation: variation, Subject: subject, SubjectAttributes: sc.json,
		Timestamp: a.now, SDKName: assignSDKName, ReceivedAt: a.now, Holdout: holdout, HoldoutVariation: holdoutVariation}
	if pos > 0 {
		out.Experiment, out.Allocation = a.experiments[pos-1], a.allocations[pos-1]
	}
	return sc.csv.Append(dst, &out)
}

// appendAttributes appends the non-empty cells of a row as a JSON object:
// numbers (as the engine reads them) as numbers, the rest as strings.
func appendAttributes(dst []byte, names []string, cells [][]byte) []byte {
	dst = append(dst, '{')
	first := true
	for i, c := range cells {
		if i >= len(names) || len(c) == 0 {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendJSONString(dst, names[i])
		dst = append(dst, ':')
		if x, ok := ufc.ParseNumberString(unsafe.String(&c[0], len(c))); ok && !math.IsInf(x, 0) && !math.IsNaN(x) {
			dst = strconv.AppendFloat(dst, x, 'g', -1, 64)
		} else {
			dst = appendJSONString(dst, unsafe.String(&c[0], len(c)))
		}
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, `\u00`...)
				dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
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

// appendRecord encodes what varies between the rows of allot assign (the
// allocation's position, 0 for none, the variation, the subject and the
// attributes) for parquetRows: length-prefixed, so that nothing is quoted
// or parsed on the way.
func appendRecord(dst []byte, pos int, variation, subject string, attrs []byte, holdout, holdoutVariation string) []byte {
	dst = binary.AppendUvarint(dst, uint64(pos))
	dst = binary.AppendUvarint(dst, uint64(len(variation)))
	dst = append(dst, variation...)
	dst = binary.AppendUvarint(dst, uint64(len(subject)))
	dst = append(dst, subject...)
	dst = binary.AppendUvarint(dst, uint64(len(attrs)))
	dst = append(dst, attrs...)
	dst = binary.AppendUvarint(dst, uint64(len(holdout)))
	dst = append(dst, holdout...)
	dst = binary.AppendUvarint(dst, uint64(len(holdoutVariation)))
	return append(dst, holdoutVariation...)
}

// holdoutOf returns the holdout that assigned r and its half, from the
// matched split's extraLogging, as ingestion reads them from an SDK's event
// (so `allot assign` and the stored table agree), or "" outside holdouts.
func holdoutOf(r *eval.Result) (holdout, variation string) {
	extra := r.ExtraLogging()
	if len(extra) == 0 {
		return "", ""
	}
	return extra["holdoutKey"], table.HoldoutVariation(extra["holdoutVariation"])
}

// parquetRows receives the records lines.Map produces, whole batches at a
// time and in order, and writes them as rows to the table's Parquet writer.
type parquetRows struct {
	w           *table.Writer
	flag        string
	now         time.Time
	experiments []string
	allocations []string
	rows        []table.Row
}

func (p *parquetRows) Write(b []byte) (int, error) {
	p.rows = p.rows[:0]
	rest := b
	next := func() (string, bool) {
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return "", false
		}
		s := string(rest[k : k+int(n)])
		rest = rest[k+int(n):]
		return s, true
	}
	for len(rest) > 0 {
		pos, k := binary.Uvarint(rest)
		if k <= 0 || pos > uint64(len(p.allocations)) {
			return 0, errors.New("allot assign: corrupt row record")
		}
		rest = rest[k:]
		variation, ok1 := next()
		subject, ok2 := next()
		attrs, ok3 := next()
		holdout, ok4 := next()
		holdoutVariation, ok5 := next()
		if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
			return 0, errors.New("allot assign: corrupt row record")
		}
		row := table.Row{FeatureFlag: p.flag, Variation: variation, Subject: subject, SubjectAttributes: []byte(attrs),
			Timestamp: p.now, SDKName: assignSDKName, ReceivedAt: p.now, Holdout: holdout, HoldoutVariation: holdoutVariation}
		if pos > 0 {
			row.Experiment, row.Allocation = p.experiments[pos-1], p.allocations[pos-1]
		}
		p.rows = append(p.rows, row)
	}
	if err := p.w.Write(context.Background(), p.rows); err != nil {
		return 0, err
	}
	return len(b), nil
}
