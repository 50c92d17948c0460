package lines_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/lines"
)

func upper(dst, line []byte) []byte {
	if bytes.Equal(line, lines.TooLong) {
		return append(dst, "TOO LONG\n"...)
	}
	return append(append(dst, bytes.ToUpper(line)...), '\n')
}

func TestMapKeepsOrder(t *testing.T) {
	var in strings.Builder
	var want strings.Builder
	for i := range 100_003 {
		fmt.Fprintf(&in, "line %d\n", i)
		fmt.Fprintf(&want, "LINE %d\n", i)
	}
	var out bytes.Buffer
	err := lines.Map(context.Background(), strings.NewReader(in.String()), &out, lines.Options{Workers: 4, BatchSize: 7}, upper)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Fatal("output differs from input order")
	}
}

func TestMapEdges(t *testing.T) {
	long := strings.Repeat("x", 5000)
	in := "a\r\n\n" + long + "\nb"
	var out bytes.Buffer
	err := lines.Map(context.Background(), strings.NewReader(in), &out, lines.Options{MaxLine: 4096}, upper)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "A\n\nTOO LONG\nB\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	w.n++
	if w.n > 2 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestMapStopsOnWriteError: a write error stops the run and is returned;
// with slow workers still busy when it happens, batches must not be reused
// under them (run with -race).
func TestMapStopsOnWriteError(t *testing.T) {
	slow := func(dst, line []byte) []byte {
		time.Sleep(time.Microsecond)
		return append(append(dst, line...), '\n')
	}
	for range 20 {
		in := strings.Repeat("some data\n", 200000)
		err := lines.Map(context.Background(), strings.NewReader(in), &failWriter{n: 1}, lines.Options{Workers: 4, BatchSize: 64}, slow)
		if err == nil || err.Error() != "disk full" {
			t.Fatalf("got %v, want the write error", err)
		}
	}
}

func TestMapRecoversPanic(t *testing.T) {
	err := lines.Map(context.Background(), strings.NewReader("1\n2\nboom\n"), &bytes.Buffer{}, lines.Options{}, func(dst, line []byte) []byte {
		if _, err := strconv.Atoi(string(line)); err != nil {
			panic("not a number")
		}
		return append(dst, line...)
	})
	if err == nil {
		t.Fatal("a panicking function must surface as an error")
	}
}

func TestMapCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := lines.Map(ctx, strings.NewReader(strings.Repeat("x\n", 10000)), &bytes.Buffer{}, lines.Options{}, upper)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestMapQuoted(t *testing.T) {
	in := "a,\"multi\nline\",b\r\nc,\"x\"\"y\"\n"
	var got []string
	err := lines.Map(context.Background(), strings.NewReader(in), &bytes.Buffer{}, lines.Options{Quoted: true, Workers: 1}, func(dst, line []byte) []byte {
		got = append(got, string(line))
		return dst
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "a,\"multi\nline\",b" || got[1] != `c,"x""y"` {
		t.Fatalf("records %q", got)
	}
}

// TestMapQuotedStrayQuote: a quote inside an unquoted field does not open a
// quoted field, so it cannot glue the following lines into its record.
func TestMapQuotedStrayQuote(t *testing.T) {
	in := "a,5\" tablet\nb,\"x\"\"y\"\nc,\"split\nover lines\"\nd,\"\"\ne\n"
	var got []string
	err := lines.Map(context.Background(), strings.NewReader(in), &bytes.Buffer{}, lines.Options{Quoted: true, Workers: 1}, func(dst, line []byte) []byte {
		got = append(got, string(line))
		return dst
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`a,5" tablet`, `b,"x""y"`, "c,\"split\nover lines\"", `d,""`, "e"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("records %q, want %q", got, want)
	}
}
