// Package allottest helps you unit-test code that uses the Allot Go SDK:
// it builds a configuration in memory in which every subject, or the
// subjects you name, get the values you choose, and a client that serves
// it without a network and records the assignment events.
//
// The client is a real *allot.Client, so the code under test needs no
// interface of its own and assignments go through the same engine as in
// production:
//
//	flags := allottest.NewFlags().
//		Set("checkout-experiment", "treatment").
//		SetFor("checkout-experiment", "control", "user-1")
//	client, rec := allottest.NewClient(t, flags)
//	// ... run the code under test with client ...
//	if got := len(rec.Events()); got != 1 { ... }
package allottest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/internal/sdkseam"
)

// Flags is an in-memory configuration. Its methods return the receiver so
// that calls chain; they panic on misuse (a value whose type differs from
// the flag's), as a test helper should. It is safe for concurrent use.
type Flags struct {
	mu    sync.Mutex
	order []string
	flags map[string]*flag
}

type flag struct {
	typ       string
	disabled  bool
	values    map[string]any // variation key -> value
	def       string         // variation everybody gets, if hasDef
	hasDef    bool
	overrides []override // in the order set; the last one wins
}

type override struct {
	variation string
	subjects  []string
}

// NewFlags returns an empty configuration: every flag is unknown and
// every getter returns its default.
func NewFlags() *Flags {
	return &Flags{flags: make(map[string]*flag)}
}

// Set makes every subject get value from flagKey. The flag's type follows
// the value: string, bool, any integer type (INTEGER), float32 or float64
// (NUMERIC), or anything else, which is encoded with encoding/json (JSON).
// A string value is also the variation key that GetAssignment returns.
func (f *Flags) Set(flagKey string, value any) *Flags {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.flag(flagKey, value)
	fl.def, fl.hasDef = fl.variation(value), true
	return f
}

// SetFor makes the given subjects get value from flagKey, whatever Set
// says for the others. It targets the attribute "id", which is the subject
// key unless the caller passes an "id" attribute of its own.
func (f *Flags) SetFor(flagKey string, value any, subjects ...string) *Flags {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.flag(flagKey, value)
	v := fl.variation(value)
	// A later SetFor for the same subject wins: take it out of earlier ones.
	for i := range fl.overrides {
		fl.overrides[i].subjects = slices.DeleteFunc(fl.overrides[i].subjects, func(s string) bool {
			return slices.Contains(subjects, s)
		})
	}
	fl.overrides = append(fl.overrides, override{variation: v, subjects: slices.Clone(subjects)})
	return f
}

// Disable turns flagKey off: every getter returns its default.
func (f *Flags) Disable(flagKey string) *Flags {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.flags[flagKey]; ok {
		fl.disabled = true
	}
	return f
}

// Enable turns flagKey back on.
func (f *Flags) Enable(flagKey string) *Flags {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl, ok := f.flags[flagKey]; ok {
		fl.disabled = false
	}
	return f
}

// Delete removes flagKey: it becomes unknown.
func (f *Flags) Delete(flagKey string) *Flags {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.flags, flagKey)
	f.order = slices.DeleteFunc(f.order, func(k string) bool { return k == flagKey })
	return f
}

func (f *Flags) flag(key string, value any) *flag {
	typ := typeOf(value)
	fl, ok := f.flags[key]
	if !ok {
		fl = &flag{typ: typ, values: make(map[string]any)}
		f.flags[key] = fl
		f.order = append(f.order, key)
	} else if fl.typ != typ {
		panic(fmt.Sprintf("allottest: flag %q has type %s; cannot set a %s value (%v)", key, fl.typ, typ, value))
	}
	return fl
}

// variation returns the key of the variation holding value, adding it.
func (fl *flag) variation(value any) string {
	var key string
	wire := value
	switch v := value.(type) {
	case string:
		key = v
	case bool:
		key = strconv.FormatBool(v)
	case float32:
		key = strconv.FormatFloat(float64(v), 'g', -1, 32)
	case float64:
		key = strconv.FormatFloat(v, 'g', -1, 64)
	default:
		if fl.typ == "INTEGER" {
			key = fmt.Sprint(v)
			break
		}
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Sprintf("allottest: cannot encode %v as JSON: %v", v, err))
		}
		key, wire = string(b), string(b)
	}
	fl.values[key] = wire
	return key
}

func typeOf(v any) string {
	switch v.(type) {
	case string:
		return "STRING"
	case bool:
		return "BOOLEAN"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return "INTEGER"
	case float32, float64:
		return "NUMERIC"
	}
	return "JSON"
}

// The UFC document, as the server would serve it.
type (
	document struct {
		CreatedAt   string                `json:"createdAt"`
		Format      string                `json:"format"`
		Environment struct{ Name string } `json:"environment"`
		Flags       map[string]wireFlag   `json:"flags"`
	}
	wireFlag struct {
		Key           string                   `json:"key"`
		Enabled       bool                     `json:"enabled"`
		VariationType string                   `json:"variationType"`
		TotalShards   int                      `json:"totalShards"`
		Variations    map[string]wireVariation `json:"variations"`
		Allocations   []wireAllocation         `json:"allocations"`
	}
	wireVariation struct {
		Key   string `json:"key"`
		Value any    `json:"value"`
	}
	wireAllocation struct {
		Key    string      `json:"key"`
		DoLog  bool        `json:"doLog"`
		Rules  []wireRule  `json:"rules,omitempty"`
		Splits []wireSplit `json:"splits"`
	}
	wireRule struct {
		Conditions []wireCondition `json:"conditions"`
	}
	wireCondition struct {
		Attribute string   `json:"attribute"`
		Operator  string   `json:"operator"`
		Value     []string `json:"value"`
	}
	wireSplit struct {
		VariationKey string `json:"variationKey"`
		Shards       []any  `json:"shards"`
	}
)

// Document returns the configuration as a UFC document (format SERVER),
// for allot.Config.InitialConfiguration, Client.SetConfiguration, or a
// fake server. Every allocation logs.
func (f *Flags) Document() []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	doc := document{
		CreatedAt: time.Now().UTC().Format(time.RFC3339Nano),
		Format:    "SERVER",
		Flags:     make(map[string]wireFlag, len(f.flags)),
	}
	doc.Environment.Name = "allottest"
	for _, key := range f.order {
		fl := f.flags[key]
		wf := wireFlag{
			Key: key, Enabled: !fl.disabled, VariationType: fl.typ, TotalShards: 10000,
			Variations:  make(map[string]wireVariation, len(fl.values)),
			Allocations: []wireAllocation{},
		}
		for k, v := range fl.values {
			wf.Variations[k] = wireVariation{Key: k, Value: v}
		}
		// Later overrides first, so that they win over earlier ones.
		for i := len(fl.overrides) - 1; i >= 0; i-- {
			o := fl.overrides[i]
			if len(o.subjects) == 0 {
				continue
			}
			wf.Allocations = append(wf.Allocations, wireAllocation{
				Key: "allottest-subjects-" + strconv.Itoa(i), DoLog: true,
				Rules:  []wireRule{{Conditions: []wireCondition{{Attribute: "id", Operator: "ONE_OF", Value: o.subjects}}}},
				Splits: []wireSplit{{VariationKey: o.variation, Shards: []any{}}},
			})
		}
		if fl.hasDef {
			wf.Allocations = append(wf.Allocations, wireAllocation{
				Key: "allottest-everyone", DoLog: true,
				Splits: []wireSplit{{VariationKey: fl.def, Shards: []any{}}},
			})
		}
		doc.Flags[key] = wf
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("allottest: " + err.Error())
	}
	return b
}

// Apply installs the current configuration in a client made by NewClient
// (or any client), for tests that change flags as they go. A client made
// by NewClient receives it through its data-source seam, as it would
// receive a document from the server; any other through SetConfiguration.
func (f *Flags) Apply(c *allot.Client) error {
	if feed, ok := feeds.Load(c); ok {
		return feed.(*sdkseam.Feed).Push(f.Document())
	}
	return c.SetConfiguration(f.Document())
}

// feeds holds the push feed of each open client made by NewClient.
var feeds sync.Map // *allot.Client -> *sdkseam.Feed

// Recorder is an AssignmentLogger that keeps every event.
type Recorder struct {
	mu     sync.Mutex
	client *allot.Client
	events []allot.AssignmentEvent
}

var _ allot.AssignmentLogger = (*Recorder)(nil)

// LogAssignment records e.
func (r *Recorder) LogAssignment(e allot.AssignmentEvent) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns the events recorded so far, in order. With a Recorder
// made by NewClient it first waits for the client to deliver what it has
// queued, so every assignment made before the call is included.
func (r *Recorder) Events() []allot.AssignmentEvent {
	if c := r.client; c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = c.Flush(ctx)
		cancel()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// Reset forgets the recorded events.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

// NewClient returns a client serving flags, offline, and the Recorder that
// receives its assignment events. De-duplication is off, so each call that
// assigns a variation is recorded. The client is closed when the test ends.
// Later changes to flags reach the client through flags.Apply(client).
func NewClient(tb testing.TB, flags *Flags) (*allot.Client, *Recorder) {
	tb.Helper()
	if flags == nil {
		flags = NewFlags()
	}
	rec := &Recorder{}
	c, err := allot.NewClient(context.Background(), allot.Config{
		Offline:              true,
		InitialConfiguration: flags.Document(),
		AssignmentLogger:     rec,
		DisableDedup:         true,
	})
	if err != nil {
		tb.Fatalf("allottest: %v", err)
	}
	rec.client = c
	feed := new(sdkseam.Feed)
	if err := sdkseam.Attach(c, feed); err != nil {
		tb.Fatalf("allottest: %v", err)
	}
	feeds.Store(c, feed)
	tb.Cleanup(func() {
		feeds.Delete(c)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			tb.Errorf("allottest: closing the client: %v", err)
		}
	})
	return c, rec
}
