// Package lines transforms a stream of lines on every core while keeping
// their order, in bounded memory: the engine behind allot eval (and any
// other line-at-a-time command).
package lines

import (
	"bufio"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
)

// Func transforms one line (without its newline) and appends the result,
// newline included, to dst. It must not keep line.
type Func func(dst, line []byte) []byte

// TooLong is passed to Func instead of a line longer than the limit; the rest
// of that line is discarded.
var TooLong = []byte("\x00line too long\x00")

// Options tune Map. Zero values pick defaults.
type Options struct {
	Workers   int // default GOMAXPROCS
	BatchSize int // lines per batch, default 256
	MaxLine   int // longest line accepted, default 1 MiB
	// Quoted makes a line go on past a newline that falls inside double
	// quotes, as a CSV record does.
	Quoted bool
}

// csvState follows a CSV record across the chunks it is read in, to know
// whether a newline ends the record or sits inside a quoted field. As in RFC
// 4180, a quote opens a quoted field only at the start of a field; a stray
// quote elsewhere is left for the record's parser to reject, so it cannot
// swallow the lines after it.
type csvState struct {
	started    bool // the record has begun (fieldStart is meaningful)
	inQuote    bool // inside a quoted field
	quoteSeen  bool // inside a quoted field, just after a '"': closing or doubled?
	fieldStart bool // at the start of a field
}

// scan consumes a chunk (up to and including a newline, or a full buffer)
// and reports whether the record is inside a quoted field at its end.
func (s *csvState) scan(chunk []byte) bool {
	if !s.started {
		s.started, s.fieldStart = true, true
	}
	for _, c := range chunk {
		if s.quoteSeen {
			s.quoteSeen = false
			if c == '"' {
				continue // a doubled quote: still inside
			}
			s.inQuote = false // the quote closed the field; c is outside it
		}
		if s.inQuote {
			if c == '"' {
				s.quoteSeen = true
			}
			continue
		}
		switch c {
		case '"':
			if s.fieldStart {
				s.inQuote = true
			}
			s.fieldStart = false
		case ',':
			s.fieldStart = true
		default:
			s.fieldStart = false
		}
	}
	// A quote that ends the chunk leaves quoteSeen for the next chunk; a
	// chunk that ends in a newline never does (the newline settles it).
	return s.inQuote
}

type batch struct {
	buf   []byte // the lines, back to back
	ends  []int  // end offset of each line in buf
	long  []bool // line i was too long
	out   []byte
	done  chan struct{}
	panic any
}

// Map reads lines from in, applies fn to each on opts.Workers goroutines,
// and writes the results to out in input order, one Write call per batch of
// whole results (so a Writer may decode what fn produced). Memory stays bounded: at
// most a few batches per worker are in flight. It returns the first read or
// write error, or ctx's error. All goroutines have ended when it returns.
func Map(ctx context.Context, in io.Reader, out io.Writer, opts Options, fn Func) error {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 256
	}
	if opts.MaxLine <= 0 {
		opts.MaxLine = 1 << 20
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	work := make(chan *batch, opts.Workers)
	order := make(chan *batch, opts.Workers*2)
	free := sync.Pool{New: func() any { return &batch{} }}

	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				run(b, fn)
			}
		}()
	}

	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		readErr = read(ctx, bufio.NewReaderSize(in, 64<<10), opts, &free, work, order)
	}()

	var writeErr error
	for b := range order {
		// Wait even after a cancel: a worker may still be using the batch,
		// which goes back to the pool below. Workers finish a batch quickly,
		// and a batch that never reached one is marked done by the reader.
		<-b.done
		if writeErr == nil && ctx.Err() == nil {
			if b.panic != nil {
				writeErr = panicError{b.panic}
			} else if _, err := out.Write(b.out); err != nil {
				writeErr = err
			}
			if writeErr != nil {
				cancel()
			}
		}
		free.Put(b)
	}
	wg.Wait()
	switch {
	case writeErr != nil:
		return writeErr
	case readErr != nil && !errors.Is(readErr, context.Canceled):
		return readErr
	}
	return ctx.Err()
}

type panicError struct{ v any }

func (p panicError) Error() string { return "lines: the line function panicked" }

func run(b *batch, fn Func) {
	defer close(b.done)
	defer func() {
		if p := recover(); p != nil {
			b.panic = p
		}
	}()
	b.out = b.out[:0]
	start := 0
	for i, end := range b.ends {
		if b.long[i] {
			b.out = fn(b.out, TooLong)
		} else {
			b.out = fn(b.out, b.buf[start:end])
		}
		start = end
	}
}

func read(ctx context.Context, r *bufio.Reader, opts Options, free *sync.Pool, work, order chan<- *batch) error {
	next := func() *batch {
		b := free.Get().(*batch)
		b.buf, b.ends, b.long, b.panic = b.buf[:0], b.ends[:0], b.long[:0], nil
		b.done = make(chan struct{})
		return b
	}
	send := func(b *batch) error {
		select {
		case order <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case work <- b:
		case <-ctx.Done():
			close(b.done) // no worker will run it: the writer must not wait
			return ctx.Err()
		}
		return nil
	}
	b := next()
	for {
		lineStart := len(b.buf)
		long := false
		var csv csvState
		inQuote := false
		var err error
		for {
			var chunk []byte
			chunk, err = r.ReadSlice('\n')
			if opts.Quoted {
				inQuote = csv.scan(chunk)
			}
			if !long {
				if len(b.buf)-lineStart+len(chunk) > opts.MaxLine+1 {
					long = true
					b.buf = b.buf[:lineStart]
				} else {
					b.buf = append(b.buf, chunk...)
				}
			}
			if err == bufio.ErrBufferFull || (err == nil && inQuote) {
				continue
			}
			break
		}
		if err != nil && err != io.EOF {
			return err
		}
		got := len(b.buf) > lineStart || long
		if got {
			// Drop the newline (and a CR before it).
			if n := len(b.buf); n > lineStart && b.buf[n-1] == '\n' {
				b.buf = b.buf[:n-1]
				if n := len(b.buf); n > lineStart && b.buf[n-1] == '\r' {
					b.buf = b.buf[:n-1]
				}
			}
			b.ends = append(b.ends, len(b.buf))
			b.long = append(b.long, long)
		}
		if len(b.ends) >= opts.BatchSize || (err == io.EOF && len(b.ends) > 0) {
			if serr := send(b); serr != nil {
				return serr
			}
			b = next()
		}
		if err == io.EOF {
			return nil
		}
	}
}
