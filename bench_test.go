package allot

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

// countingLogger counts events and keeps nothing.
type countingLogger struct{ n atomic.Int64 }

func (l *countingLogger) LogAssignment(AssignmentEvent) { l.n.Add(1) }

// benchClient returns a client serving the engine's experiment case with a
// logger attached, whose dedup cache already holds every subject: the
// steady state of a service that assigns the same users again and again.
func benchClient(tb testing.TB, subs []string) *Client {
	c, err := NewClient(context.Background(), Config{
		Offline:              true,
		InitialConfiguration: []byte(experimentDoc),
		AssignmentLogger:     &countingLogger{},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close(context.Background()) })
	for _, s := range subs {
		c.GetStringAssignment("checkout-experiment", s, nil, "default")
	}
	if err := c.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return c
}

var sinkString string

// TestGetterNoAlloc fails if the assignment path allocates when the
// assignment was already logged (the steady state), as the benchmark's
// 0 allocs/op target requires.
func TestGetterNoAlloc(t *testing.T) {
	subs := subjects(1024)
	c := benchClient(t, subs)
	i := 0
	if n := testing.AllocsPerRun(2000, func() {
		sinkString = c.GetStringAssignment("checkout-experiment", subs[i&1023], nil, "default")
		i++
	}); n != 0 {
		t.Errorf("GetStringAssignment: %v allocs per call, want 0", n)
	}
	if n := testing.AllocsPerRun(2000, func() {
		sinkString, _ = c.GetAssignment("checkout-experiment", subs[i&1023], nil)
		i++
	}); n != 0 {
		t.Errorf("GetAssignment: %v allocs per call, want 0", n)
	}
	attrs := Attributes{"country": "FR", "plan": "pro", "age": 31}
	if n := testing.AllocsPerRun(2000, func() {
		sinkString = c.GetStringAssignment("no-such-flag", subs[i&1023], attrs, "default")
		i++
	}); n != 0 {
		t.Errorf("unknown flag: %v allocs per call, want 0", n)
	}
}

// BenchmarkGetStringAssignment: the engine's experiment case (traffic and
// split shards, no rules) through the public getter, with a logger
// attached and every assignment a dedup hit. Target: <= 300 ns/op,
// 0 allocs/op.
func BenchmarkGetStringAssignment(b *testing.B) {
	subs := subjects(1024)
	c := benchClient(b, subs)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkString = c.GetStringAssignment("checkout-experiment", subs[i&1023], nil, "default")
		i++
	}
}

// BenchmarkGetStringAssignmentParallel is the same on every core.
func BenchmarkGetStringAssignmentParallel(b *testing.B) {
	subs := subjects(1024)
	c := benchClient(b, subs)
	b.ReportAllocs()
	var seed atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(331))
		var v string
		for pb.Next() {
			v = c.GetStringAssignment("checkout-experiment", subs[i&1023], nil, "default")
			i++
		}
		_ = v
	})
}

// BenchmarkGetAssignment: the experiment API (variation key, flag's own
// type), dedup hits.
func BenchmarkGetAssignment(b *testing.B) {
	subs := subjects(1024)
	c := benchClient(b, subs)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkString, _ = c.GetAssignment("checkout-experiment", subs[i&1023], nil)
		i++
	}
}

// BenchmarkGetStringAssignmentNoLogger: without an assignment logger.
func BenchmarkGetStringAssignmentNoLogger(b *testing.B) {
	subs := subjects(1024)
	c, err := NewClient(context.Background(), Config{Offline: true, InitialConfiguration: []byte(experimentDoc)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkString = c.GetStringAssignment("checkout-experiment", subs[i&1023], nil, "default")
		i++
	}
}

// BenchmarkGetStringAssignmentNewSubjects: every call a subject not seen
// before, so every call in the experiment queues an event (the logger
// keeps up or events are dropped; either way the caller does not wait).
func BenchmarkGetStringAssignmentNewSubjects(b *testing.B) {
	subs := subjects(1 << 16)
	c, err := NewClient(context.Background(), Config{
		Offline: true, InitialConfiguration: []byte(experimentDoc),
		AssignmentLogger: &countingLogger{}, DisableDedup: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkString = c.GetStringAssignment("checkout-experiment", subs[i&(1<<16-1)], nil, "default")
		i++
	}
}

var sinkResult eval.Result

// BenchmarkEngineBaseline is the engine alone on the same document and
// subjects (what internal/eval's BenchmarkExperiment measures), so that one
// run shows the SDK's overhead over it.
func BenchmarkEngineBaseline(b *testing.B) {
	snap, err := eval.Load([]byte(experimentDoc))
	if err != nil {
		b.Fatal(err)
	}
	subs := subjects(1024)
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sinkResult = snap.Evaluate("checkout-experiment", subs[i&1023], nil, ufc.TypeString, now)
		i++
	}
}
