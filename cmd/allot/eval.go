package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/allot-dev/allot/cmd/allot/internal/lines"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

func init() {
	register("eval", "evaluate flags offline: JSON lines in, JSON lines out", runEval)
}

// evalRequest is one input line of allot eval. The format is a public
// interface (README, "allot eval"): keep it stable.
type evalRequest struct {
	Flag       *string           `json:"flag"`
	Subject    *string           `json:"subject"`
	Attributes map[string]any    `json:"attributes"`
	Type       ufc.VariationType `json:"type"`
	Default    json.RawMessage   `json:"default"`
}

func runEval(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("allot eval", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	configPath := fs.String("config", "", "UFC configuration `file` to evaluate against (required)")
	var nowFlag timeFlag
	fs.Var(&nowFlag, "now", "evaluation `time`, RFC 3339 (default: the current time, fixed at start)")
	fs.Usage = func() {
		fmt.Fprintln(e.stderr, "usage: allot eval --config FILE [--now RFC3339] < requests.jsonl > results.jsonl")
		fmt.Fprintln(e.stderr, "\nEach input line is a request:")
		fmt.Fprintln(e.stderr, `  {"flag": "...", "subject": "...", "attributes": {...}, "type": "STRING|INTEGER|NUMERIC|BOOLEAN|JSON", "default": <value>}`)
		fmt.Fprintln(e.stderr, "and each output line, in the same order, a result:")
		fmt.Fprintln(e.stderr, `  {"value": <value>, "variation": "<key>"|null, "allocation": "<key>"|null, "reason": "<code>", "log": true|false}`)
		fmt.Fprintln(e.stderr, `("variation" and "allocation" are also set with ASSIGNMENT_ERROR when the subject reached an unusable variation)`)
		fmt.Fprintln(e.stderr, `or {"error": "..."} for a malformed request.`)
		fmt.Fprintln(e.stderr, "\nflags:")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return &exitError{code: 2, err: errors.New("--config is required and no arguments are taken")}
	}
	now := nowFlag.Time
	if now.IsZero() {
		now = time.Now()
	}
	data, err := os.ReadFile(*configPath)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	snap, err := eval.Load(data)
	if err != nil {
		return fmt.Errorf("--config %s: %w", *configPath, err)
	}
	return lines.Map(ctx, e.stdin, e.stdout, lines.Options{}, func(dst, line []byte) []byte {
		return evalLine(dst, line, snap, now)
	})
}

// evalLine answers one request line.
func evalLine(dst, line []byte, snap *eval.Snapshot, now time.Time) []byte {
	if bytes.Equal(line, lines.TooLong) {
		return errorLine(dst, "request line too long")
	}
	var req evalRequest
	if err := json.Unmarshal(line, &req); err != nil {
		return errorLine(dst, "malformed request: "+err.Error())
	}
	switch {
	case req.Flag == nil || *req.Flag == "":
		return errorLine(dst, `"flag" is required`)
	case req.Subject == nil:
		return errorLine(dst, `"subject" is required`)
	case req.Type != "" && !req.Type.Valid():
		return errorLine(dst, fmt.Sprintf(`"type" %q is not one of STRING, INTEGER, NUMERIC, BOOLEAN, JSON`, req.Type))
	}
	def := []byte("null")
	if len(req.Default) > 0 {
		var buf bytes.Buffer
		if err := json.Compact(&buf, req.Default); err != nil {
			return errorLine(dst, "malformed default: "+err.Error())
		}
		def = buf.Bytes()
		if req.Type != "" && !fitsType(def, req.Type) {
			return errorLine(dst, fmt.Sprintf(`"default" %s does not fit type %s`, def, req.Type))
		}
	}
	r := snap.Evaluate(*req.Flag, *req.Subject, req.Attributes, req.Type, now)
	dst = append(dst, `{"value":`...)
	if r.Code == eval.Match {
		dst = appendValue(dst, r.Variation, r.Flag.Type)
	} else {
		dst = append(dst, def...)
	}
	// The variation and allocation the subject reached are reported with
	// ASSIGNMENT_ERROR too (a variation whose value does not fit the flag's
	// type, or that the flag does not have), as Eppo's fixtures expect;
	// the value is then the default.
	if r.Split != nil && (r.Code == eval.Match || r.Code == eval.AssignmentError) {
		dst = append(dst, `,"variation":`...)
		dst = appendString(dst, r.VariationKey())
		dst = append(dst, `,"allocation":`...)
		dst = appendString(dst, r.AllocationKey())
	} else {
		dst = append(dst, `,"variation":null,"allocation":null`...)
	}
	dst = append(dst, `,"reason":"`...)
	dst = append(dst, r.Code.String()...)
	dst = append(dst, `","log":`...)
	dst = strconv.AppendBool(dst, r.DoLog())
	return append(dst, "}\n"...)
}

// fitsType reports whether a default value (compact JSON) suits type t.
func fitsType(v []byte, t ufc.VariationType) bool {
	if string(v) == "null" {
		return true
	}
	switch t {
	case ufc.TypeString:
		return v[0] == '"'
	case ufc.TypeBoolean:
		return string(v) == "true" || string(v) == "false"
	case ufc.TypeNumeric:
		return ufc.IsNumber(v)
	case ufc.TypeInteger:
		_, err := strconv.ParseInt(string(v), 10, 64)
		return err == nil
	}
	return true // any JSON value is a JSON default
}

func appendValue(dst []byte, v *eval.Variation, t ufc.VariationType) []byte {
	switch t {
	case ufc.TypeString:
		return appendString(dst, v.String())
	case ufc.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10)
	case ufc.TypeNumeric:
		return appendFloat(dst, v.Float())
	case ufc.TypeBoolean:
		return strconv.AppendBool(dst, v.Bool())
	case ufc.TypeJSON:
		// The value is JSON text, possibly spread over several lines:
		// compact it so that each result stays on one line.
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(v.JSON())); err != nil {
			return append(dst, "null"...)
		}
		return append(dst, buf.Bytes()...)
	}
	return append(dst, "null"...)
}

// appendFloat writes a JSON number the way encoding/json does.
func appendFloat(dst []byte, x float64) []byte {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(x)
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		return strconv.AppendFloat(dst, x, 'e', -1, 64)
	}
	return strconv.AppendFloat(dst, x, 'f', -1, 64)
}

func errorLine(dst []byte, msg string) []byte {
	dst = append(dst, `{"error":`...)
	dst = appendString(dst, msg)
	return append(dst, "}\n"...)
}

// appendString writes s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
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
