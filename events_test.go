package allot

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func offlineClient(t *testing.T, doc string, cfg Config) *Client {
	t.Helper()
	cfg.Offline = true
	cfg.InitialConfiguration = []byte(doc)
	c, err := NewClient(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeClient(t, c)
	return c
}

func flush(t *testing.T, c *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEventFields(t *testing.T) {
	rec := &recorder{}
	at := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("X", 3600))
	cfg := Config{AssignmentLogger: rec}
	cfg.now = func() time.Time { return at }
	c := offlineClient(t, experimentDoc, cfg)
	subject := "user-0000000000000007919"
	attrs := Attributes{"country": "FR", "age": 31}
	v := c.GetStringAssignment("checkout-experiment", subject, attrs, "default")
	if v == "default" {
		t.Fatalf("subject not in the experiment")
	}
	attrs["country"] = "changed after the call"
	flush(t, c)
	events := rec.all()
	if len(events) != 1 {
		t.Fatalf("%d events", len(events))
	}
	e := events[0]
	want := AssignmentEvent{
		FeatureFlag: "checkout-experiment", Allocation: "experiment", Experiment: "checkout-experiment-experiment",
		Variation: v, Subject: subject, Timestamp: at.UTC(),
	}
	if e.FeatureFlag != want.FeatureFlag || e.Allocation != want.Allocation || e.Experiment != want.Experiment ||
		e.Variation != want.Variation || e.Subject != want.Subject || !e.Timestamp.Equal(want.Timestamp) || e.Timestamp.Location() != time.UTC {
		t.Errorf("event %+v", e)
	}
	if e.SubjectAttributes["country"] != "FR" || e.SubjectAttributes["age"] != 31 || len(e.SubjectAttributes) != 2 {
		t.Errorf("attributes %v (want the caller's, as they were at the call)", e.SubjectAttributes)
	}
	if e.ExtraLogging["holdout"] != "none" || e.MetaData["sdkLanguage"] != "go" || e.MetaData["sdkVersion"] != Version {
		t.Errorf("extraLogging %v metaData %v", e.ExtraLogging, e.MetaData)
	}
	b, _ := json.Marshal(e)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, k := range []string{"featureFlag", "allocation", "experiment", "variation", "subject", "subjectAttributes", "timestamp", "metaData", "extraLogging"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON has no %q: %s", k, b)
		}
	}
	if st := c.Status(); st.EventsLogged != 1 || st.EventsDropped != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestNoEventForDefaults(t *testing.T) {
	rec := &recorder{}
	c := offlineClient(t, experimentDoc, Config{AssignmentLogger: rec})
	c.GetStringAssignment("no-such-flag", "alice", nil, "d")
	c.GetBoolAssignment("checkout-experiment", "alice", nil, false) // wrong type
	c.GetStringAssignment("checkout-experiment", "", nil, "d")      // no subject
	n := 0
	for _, s := range subjects(50) {
		if _, ok := c.GetAssignment("checkout-experiment", s, nil); !ok {
			n++ // outside the 80 % traffic
		}
	}
	flush(t, c)
	if got := len(rec.all()); got != 50-n {
		t.Errorf("%d events, want %d (one per subject in the experiment)", got, 50-n)
	}
}

func TestDedup(t *testing.T) {
	rec := &recorder{}
	c := offlineClient(t, experimentDoc, Config{AssignmentLogger: rec})
	subs := subjects(20)
	for range 5 {
		for _, s := range subs {
			c.GetStringAssignment("checkout-experiment", s, nil, "d")
			c.GetAssignment("checkout-experiment", s, nil)
		}
		flush(t, c)
	}
	in := 0
	for _, s := range subs {
		if _, ok := c.GetAssignment("checkout-experiment", s, Attributes{"other": "attributes"}); ok {
			in++
		}
	}
	flush(t, c)
	if got := len(rec.all()); got != in {
		t.Errorf("%d events, want one per subject (%d)", got, in)
	}

	// A change of variation is logged, and so is the change back.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rec2 := &recorder{}
	c2 := offlineClient(t, string(constantDoc("banner", "blue", t0)), Config{AssignmentLogger: rec2})
	for i, v := range []string{"blue", "red", "red", "blue", "blue"} {
		if err := c2.SetConfiguration(constantDoc("banner", v, t0.Add(time.Duration(i)*time.Hour))); err != nil {
			t.Fatal(err)
		}
		if got := c2.GetStringAssignment("banner", "alice", nil, "d"); got != v {
			t.Fatalf("got %q want %q", got, v)
		}
		flush(t, c2)
	}
	var seq []string
	for _, e := range rec2.all() {
		seq = append(seq, e.Variation)
	}
	if len(seq) != 3 || seq[0] != "blue" || seq[1] != "red" || seq[2] != "blue" {
		t.Errorf("logged %v, want [blue red blue]", seq)
	}
	if st := c2.Status(); st.EventsLogged != 3 {
		t.Errorf("status %+v", st)
	}
}

// TestDedupEviction: the cache is bounded. With room for one set of eight
// pairs, eight subjects stay remembered, and a hundred churn through: most
// are logged again when they come back.
func TestDedupEviction(t *testing.T) {
	rec := &recorder{}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := offlineClient(t, string(constantDoc("banner", "blue", t0)), Config{AssignmentLogger: rec, DedupCacheSize: 2})
	few, many := subjects(8), subjects(100)
	for range 3 {
		for _, s := range few {
			c.GetStringAssignment("banner", s, nil, "d")
		}
	}
	flush(t, c)
	if got := len(rec.all()); got != 8 {
		t.Errorf("%d events for 8 subjects assigned 3 times each, want 8", got)
	}
	rec.events = nil
	for range 2 {
		for _, s := range many {
			c.GetStringAssignment("banner", s, nil, "d")
		}
	}
	flush(t, c)
	if got := len(rec.all()); got < 2*100-8 {
		t.Errorf("%d events for 100 subjects twice through an 8-pair cache, want at least 192", got)
	}
}

func TestDisableDedup(t *testing.T) {
	rec := &recorder{}
	c := offlineClient(t, string(constantDoc("banner", "blue", time.Now())), Config{AssignmentLogger: rec, DisableDedup: true})
	for range 10 {
		c.GetStringAssignment("banner", "alice", nil, "d")
	}
	flush(t, c)
	if got := len(rec.all()); got != 10 {
		t.Errorf("%d events, want 10", got)
	}
}

// blockingLogger blocks until released.
type blockingLogger struct {
	release chan struct{}
	n       atomic.Int32
}

func (b *blockingLogger) LogAssignment(AssignmentEvent) {
	<-b.release
	b.n.Add(1)
}

// TestQueueFull: a blocked logger never blocks the caller; the events that
// do not fit are dropped, counted, reported to OnEventsDropped and logged,
// and logging resumes afterwards.
func TestQueueFull(t *testing.T) {
	bl := &blockingLogger{release: make(chan struct{})}
	var reported atomic.Uint64
	var warnings strings.Builder
	var wmu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(b []byte) (int, error) {
		wmu.Lock()
		defer wmu.Unlock()
		return warnings.Write(b)
	}), nil))
	// One batch of room: EventQueueSize is rounded up to whole batches.
	c := offlineClient(t, string(constantDoc("banner", "blue", time.Now())), Config{AssignmentLogger: bl, EventQueueSize: 4,
		OnEventsDropped: func(n uint64) { reported.Add(n) }, Logger: logger})
	for _, s := range subjects(1000) {
		c.GetStringAssignment("banner", s, nil, "d") // must not block
	}
	st := c.Status()
	if st.EventsDropped < 1000-batchLen {
		t.Errorf("dropped %d, want at least %d", st.EventsDropped, 1000-batchLen)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	if err := c.Flush(ctx); err == nil {
		t.Errorf("Flush returned while the logger was blocked")
	}
	cancel()
	close(bl.release)
	flush(t, c)
	c.GetStringAssignment("banner", "after-the-block", nil, "d")
	flush(t, c)
	dropped := c.Status().EventsDropped
	if n := bl.n.Load(); n < 2 || uint64(n)+dropped != 1001 {
		t.Errorf("logged %d, dropped %d", n, dropped)
	}
	// The report comes with the next tick of the logging goroutine.
	deadline := time.Now().Add(5 * time.Second)
	for reported.Load() != dropped && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := reported.Load(); got != dropped {
		t.Errorf("OnEventsDropped was told of %d drops, want %d", got, dropped)
	}
	wmu.Lock()
	defer wmu.Unlock()
	if !strings.Contains(warnings.String(), "assignment events dropped") {
		t.Errorf("no warning about the drops in %q", warnings.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

type panickyLogger struct {
	calls atomic.Int32
	rec   recorder
}

func (p *panickyLogger) LogAssignment(e AssignmentEvent) {
	if p.calls.Add(1) == 1 {
		panic("logger bug")
	}
	p.rec.LogAssignment(e)
}

// TestLoggerPanics: a panicking logger neither crashes the host nor stops
// later logging; the failed event is not remembered as logged.
func TestLoggerPanics(t *testing.T) {
	pl := &panickyLogger{}
	c := offlineClient(t, string(constantDoc("banner", "blue", time.Now())), Config{AssignmentLogger: pl})
	c.GetStringAssignment("banner", "alice", nil, "d")
	flush(t, c)
	c.GetStringAssignment("banner", "alice", nil, "d")
	c.GetStringAssignment("banner", "bob", nil, "d")
	flush(t, c)
	if got := len(pl.rec.all()); got != 2 {
		t.Errorf("%d events after the panic, want 2", got)
	}
	if st := c.Status(); st.LoggerPanics != 1 || st.EventsLogged != 2 {
		t.Errorf("status %+v", st)
	}
}

// TestCloseDelivers: Close delivers what is queued and later getters
// still work (without logging).
func TestCloseDelivers(t *testing.T) {
	rec := &recorder{}
	c, err := NewClient(context.Background(), Config{Offline: true, InitialConfiguration: []byte(experimentDoc), AssignmentLogger: rec})
	if err != nil {
		t.Fatal(err)
	}
	in := 0
	for _, s := range subjects(200) {
		if _, ok := c.GetAssignment("checkout-experiment", s, nil); ok {
			in++
		}
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.all()); got != in {
		t.Errorf("%d events delivered by Close, want %d", got, in)
	}
	if _, ok := c.GetAssignment("checkout-experiment", "user-0000000000000007919", nil); !ok {
		t.Errorf("getter after Close")
	}
	if err := c.Flush(context.Background()); err != ErrClosed {
		t.Errorf("Flush after Close: %v", err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseBlockedLogger: Close gives up when its context ends, and the
// goroutine stops once the logger returns.
func TestCloseBlockedLogger(t *testing.T) {
	bl := &blockingLogger{release: make(chan struct{})}
	c, err := NewClient(context.Background(), Config{Offline: true, InitialConfiguration: []byte(experimentDoc), AssignmentLogger: bl})
	if err != nil {
		t.Fatal(err)
	}
	c.GetAssignment("checkout-experiment", "user-0000000000000007919", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := c.Close(ctx); err == nil {
		t.Errorf("Close returned nil with the logger blocked")
	}
	close(bl.release)
	c.wg.Wait()
}

// TestConcurrentUse: getters, configuration swaps, Flush and Status at
// once (run with -race).
func TestConcurrentUse(t *testing.T) {
	rec := &recorder{}
	c := offlineClient(t, experimentDoc, Config{AssignmentLogger: rec, DedupCacheSize: 64})
	subs := subjects(256)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 2000 {
				s := subs[(i*7+g)%len(subs)]
				c.GetStringAssignment("checkout-experiment", s, Attributes{"i": i}, "d")
				c.GetAssignment("checkout-experiment", s, nil)
				if i%500 == 0 {
					_ = c.Status()
				}
			}
		}()
	}
	go func() {
		defer func() { done <- struct{}{} }()
		for i := range 50 {
			_ = c.SetConfiguration([]byte(experimentDoc))
			if i%10 == 0 {
				_ = c.Flush(context.Background())
			}
		}
	}()
	for range 5 {
		<-done
	}
	flush(t, c)
	if len(rec.all()) == 0 {
		t.Errorf("no events")
	}
}

// TestDedupAcrossSnapshots: a new configuration that assigns the same
// variation does not log again (the cache compares keys, not snapshots).
func TestDedupAcrossSnapshots(t *testing.T) {
	rec := &recorder{}
	doc := constantDoc("banner", "blue", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := offlineClient(t, string(doc), Config{AssignmentLogger: rec, DedupCacheSize: 1})
	step := func(subject string) {
		c.GetStringAssignment("banner", subject, nil, "d")
		flush(t, c)
	}
	step("a")
	for range 3 {
		if err := c.SetConfiguration(doc); err != nil {
			t.Fatal(err)
		}
		step("a")
		step("a")
	}
	if n := len(rec.all()); n != 1 {
		t.Fatalf("%d events for one unchanged assignment, want 1", n)
	}
	step("b")
	step("a")
	if n := len(rec.all()); n != 2 {
		t.Errorf("%d events, want 2 (a once, b once)", n)
	}
}

// TestDedupChangeBackSameConfiguration: within one configuration, a
// subject whose variation goes A → B → A is logged three times.
func TestDedupChangeBackSameConfiguration(t *testing.T) {
	doc := []byte(`{"format": "SERVER", "flags": {"f": {"key": "f", "enabled": true, "variationType": "STRING", "totalShards": 10000,
	  "variations": {"us": {"key": "us", "value": "us"}, "other": {"key": "other", "value": "other"}},
	  "allocations": [
	    {"key": "us", "doLog": true, "rules": [{"conditions": [{"attribute": "country", "operator": "ONE_OF", "value": ["US"]}]}], "splits": [{"variationKey": "us", "shards": []}]},
	    {"key": "rest", "doLog": true, "splits": [{"variationKey": "other", "shards": []}]}]}}}`)
	rec := &recorder{}
	ctx := context.Background()
	c, err := NewClient(ctx, Config{Offline: true, InitialConfiguration: doc, AssignmentLogger: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, country := range []string{"US", "FR", "US", "US", "FR"} {
		c.GetStringAssignment("f", "alice", Attributes{"country": country}, "")
		if err := c.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, e := range rec.all() {
		got = append(got, e.Variation)
	}
	if strings.Join(got, ",") != "us,other,us,other" {
		t.Fatalf("logged %v, want us,other,us,other", got)
	}
}
