// Package allotof is an OpenFeature provider for Allot: it lets code written
// against the OpenFeature Go SDK (github.com/open-feature/go-sdk) evaluate
// Allot flags locally through an *allot.Client.
//
// It lives in a module of its own so that Allot's SDK module stays free of
// third-party dependencies. Import it under its package name:
//
//	import allotof "github.com/allot-dev/allot/openfeature"
//
//	client, err := allot.NewClient(ctx, allot.Config{SDKKey: key, BaseURL: url})
//	provider := allotof.New(client, allotof.Options{})
//	openfeature.SetProviderAndWait(provider)
//
// The targeting key is Allot's subject key; the other context attributes are
// the subject's attributes. Assignments are logged by the client's
// AssignmentLogger, as for any other getter.
package allotof

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	of "github.com/open-feature/go-sdk/openfeature"

	"github.com/allot-dev/allot"
)

// Name is the provider's name in OpenFeature metadata and events.
const Name = "Allot"

// Options tune a Provider; zero values pick defaults.
type Options struct {
	// WatchInterval is how often the provider reads Client.Status to notice
	// a new configuration (PROVIDER_CONFIGURATION_CHANGED) and fetch errors
	// (PROVIDER_ERROR / PROVIDER_STALE); default 1 s.
	WatchInterval time.Duration
	// InitTimeout bounds how long Init waits for the client's first
	// configuration; default 10 s.
	InitTimeout time.Duration
}

// Provider is an OpenFeature provider over an *allot.Client. It does not own
// the client: Shutdown stops the provider, and the caller closes the client.
type Provider struct {
	client *allot.Client
	opts   Options
	events chan of.Event
	ready  atomic.Bool

	mu     sync.Mutex // guards cancel, done
	cancel context.CancelFunc
	done   chan struct{}
}

var (
	_ of.FeatureProvider          = (*Provider)(nil)
	_ of.ContextAwareStateHandler = (*Provider)(nil)
	_ of.EventHandler             = (*Provider)(nil)
)

// New returns a provider evaluating through c.
func New(c *allot.Client, opts Options) *Provider {
	if opts.WatchInterval <= 0 {
		opts.WatchInterval = time.Second
	}
	if opts.InitTimeout <= 0 {
		opts.InitTimeout = 10 * time.Second
	}
	return &Provider{client: c, opts: opts, events: make(chan of.Event, 16)}
}

// Metadata names the provider.
func (p *Provider) Metadata() of.Metadata { return of.Metadata{Name: Name} }

// Hooks returns none.
func (p *Provider) Hooks() []of.Hook { return nil }

// EventChannel delivers PROVIDER_CONFIGURATION_CHANGED, PROVIDER_STALE,
// PROVIDER_ERROR and PROVIDER_READY events after Init.
func (p *Provider) EventChannel() <-chan of.Event { return p.events }

// Init waits for the client's first configuration (InitTimeout at most) and
// starts watching the client's status. An error leaves the provider in the
// ERROR state; it emits PROVIDER_READY when a configuration arrives later.
func (p *Provider) Init(evalCtx of.EvaluationContext) error {
	return p.InitWithContext(context.Background(), evalCtx)
}

// InitWithContext is Init bounded by ctx as well.
func (p *Provider) InitWithContext(ctx context.Context, _ of.EvaluationContext) error {
	if p.client == nil {
		return &of.ProviderInitError{ErrorCode: of.ProviderFatalCode, Message: "allotof: nil *allot.Client"}
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.InitTimeout)
	defer cancel()
	var err error
	for {
		st := p.client.Status()
		if st.Ready {
			p.ready.Store(true)
			break
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("allotof: no configuration yet (last fetch error: %v): %w", st.LastError, ctx.Err())
			break
		}
		t := time.NewTimer(25 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	p.startWatch()
	return err
}

// Shutdown stops the provider's watcher and waits for it.
func (p *Provider) Shutdown() { _ = p.ShutdownWithContext(context.Background()) }

// ShutdownWithContext is Shutdown bounded by ctx.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel, p.done = nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Provider) startWatch() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.watch(ctx, p.done)
}

// watch polls the client's status and turns its changes into events: a new
// configuration (environment, creation time or flag count moved), a fetch
// failing while a configuration is served (STALE), no configuration at all
// (ERROR), and recovery (READY).
func (p *Provider) watch(ctx context.Context, done chan struct{}) {
	defer close(done)
	type sig struct {
		env   string
		at    time.Time
		flags int
	}
	st := p.client.Status()
	last := sig{st.Environment, st.CreatedAt, st.Flags}
	failing := st.ConsecutiveFailures > 0
	tick := time.NewTicker(p.opts.WatchInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		st := p.client.Status()
		now := sig{st.Environment, st.CreatedAt, st.Flags}
		switch {
		case st.Ready && !p.ready.Load():
			p.ready.Store(true)
			last = now
			p.emit(ctx, of.ProviderReady, "configuration received", "")
		case st.Ready && now != last:
			last = now
			p.emit(ctx, of.ProviderConfigChange, "new configuration from "+st.Source, "")
		}
		if f := st.ConsecutiveFailures > 0; f != failing {
			failing = f
			switch {
			case f && st.Ready:
				p.emit(ctx, of.ProviderStale, fmt.Sprintf("configuration fetch failing, serving the last one: %v", st.LastError), "")
			case f:
				p.emit(ctx, of.ProviderError, fmt.Sprintf("no configuration: %v", st.LastError), of.GeneralCode)
			default:
				p.emit(ctx, of.ProviderReady, "configuration fetch recovered", "")
			}
		}
	}
}

func (p *Provider) emit(ctx context.Context, t of.EventType, msg string, code of.ErrorCode) {
	e := of.Event{ProviderName: Name, EventType: t, ProviderEventDetails: of.ProviderEventDetails{Message: msg, ErrorCode: code}}
	select {
	case p.events <- e:
	case <-ctx.Done():
	}
}

// subject splits an OpenFeature context into Allot's subject key and
// attributes. Attributes must be strings, numbers, booleans or nil: the
// engine compares nothing else, so anything else is INVALID_CONTEXT rather
// than a rule that silently never matches.
func subject(flat of.FlattenedContext) (string, allot.Attributes, *of.ResolutionError) {
	var key string
	attrs := make(allot.Attributes, len(flat))
	for k, v := range flat {
		if k == of.TargetingKey {
			s, ok := v.(string)
			if !ok && v != nil {
				e := of.NewInvalidContextResolutionError("targetingKey must be a string")
				return "", nil, &e
			}
			key = s
			continue
		}
		switch v.(type) {
		case nil, string, bool, float64, float32, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
			attrs[k] = v
		default:
			e := of.NewInvalidContextResolutionError(fmt.Sprintf("attribute %q is a %T; Allot evaluates strings, numbers, booleans and nil only", k, v))
			return "", nil, &e
		}
	}
	return key, attrs, nil
}

// resolution maps the client's details to OpenFeature's.
func (p *Provider) resolution(d allot.Details, subjectKey string) of.ProviderResolutionDetail {
	meta := of.FlagMetadata{}
	if d.Environment != "" {
		meta["environment"] = d.Environment
	}
	if d.Allocation != "" {
		meta["allocation"] = d.Allocation
	}
	r := of.ProviderResolutionDetail{FlagMetadata: meta}
	switch d.Code {
	case allot.CodeMatch:
		r.Variant = d.Variation
		switch {
		case d.Targeted:
			r.Reason = of.TargetingMatchReason
		case d.Randomized:
			r.Reason = of.SplitReason
		default:
			r.Reason = of.StaticReason
		}
	case allot.CodeDefaultAllocationNull:
		r.Reason = of.DefaultReason
	case allot.CodeFlagUnrecognizedOrDisabled:
		switch {
		case d.FlagFound:
			r.Reason = of.DisabledReason
		case !p.ready.Load() && !p.client.Status().Ready:
			r.Reason = of.ErrorReason
			r.ResolutionError = of.NewProviderNotReadyResolutionError("no configuration yet")
		default:
			r.Reason = of.ErrorReason
			r.ResolutionError = of.NewFlagNotFoundResolutionError(d.Reason)
		}
	case allot.CodeTypeMismatch:
		r.Reason = of.ErrorReason
		r.ResolutionError = of.NewTypeMismatchResolutionError(d.Reason)
	default: // CodeAssignmentError
		r.Reason = of.ErrorReason
		if subjectKey == "" {
			r.ResolutionError = of.NewTargetingKeyMissingResolutionError(d.Reason)
		} else {
			r.ResolutionError = of.NewGeneralResolutionError(d.Reason)
		}
	}
	return r
}

func invalid(e *of.ResolutionError) of.ProviderResolutionDetail {
	return of.ProviderResolutionDetail{Reason: of.ErrorReason, ResolutionError: *e}
}

// BooleanEvaluation evaluates a BOOLEAN flag.
func (p *Provider) BooleanEvaluation(_ context.Context, flag string, def bool, flat of.FlattenedContext) of.BoolResolutionDetail {
	key, attrs, bad := subject(flat)
	if bad != nil {
		return of.BoolResolutionDetail{Value: def, ProviderResolutionDetail: invalid(bad)}
	}
	v, d := p.client.GetBoolAssignmentDetails(flag, key, attrs, def)
	return of.BoolResolutionDetail{Value: v, ProviderResolutionDetail: p.resolution(d, key)}
}

// StringEvaluation evaluates a STRING flag.
func (p *Provider) StringEvaluation(_ context.Context, flag string, def string, flat of.FlattenedContext) of.StringResolutionDetail {
	key, attrs, bad := subject(flat)
	if bad != nil {
		return of.StringResolutionDetail{Value: def, ProviderResolutionDetail: invalid(bad)}
	}
	v, d := p.client.GetStringAssignmentDetails(flag, key, attrs, def)
	return of.StringResolutionDetail{Value: v, ProviderResolutionDetail: p.resolution(d, key)}
}

// FloatEvaluation evaluates a NUMERIC flag, or an INTEGER one (every
// int64 Allot serves is a float64 OpenFeature can hold, within 2^53).
func (p *Provider) FloatEvaluation(_ context.Context, flag string, def float64, flat of.FlattenedContext) of.FloatResolutionDetail {
	key, attrs, bad := subject(flat)
	if bad != nil {
		return of.FloatResolutionDetail{Value: def, ProviderResolutionDetail: invalid(bad)}
	}
	v, d := p.client.GetNumericAssignmentDetails(flag, key, attrs, def)
	if d.Code == allot.CodeTypeMismatch {
		// An INTEGER flag read as a float, as OpenFeature's number type
		// allows (the Node providers do the same).
		n, d2 := p.client.GetIntegerAssignmentDetails(flag, key, attrs, 0)
		if d2.Code != allot.CodeTypeMismatch {
			v, d = def, d2
			if d2.Code == allot.CodeMatch {
				v = float64(n)
			}
		}
	}
	return of.FloatResolutionDetail{Value: v, ProviderResolutionDetail: p.resolution(d, key)}
}

// IntEvaluation evaluates an INTEGER flag, or a NUMERIC one whose value is
// a whole number.
func (p *Provider) IntEvaluation(_ context.Context, flag string, def int64, flat of.FlattenedContext) of.IntResolutionDetail {
	key, attrs, bad := subject(flat)
	if bad != nil {
		return of.IntResolutionDetail{Value: def, ProviderResolutionDetail: invalid(bad)}
	}
	v, d := p.client.GetIntegerAssignmentDetails(flag, key, attrs, def)
	if d.Code == allot.CodeTypeMismatch {
		f, d2 := p.client.GetNumericAssignmentDetails(flag, key, attrs, 0)
		if d2.Code != allot.CodeTypeMismatch {
			v, d = def, d2
			if d2.Code == allot.CodeMatch {
				if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
					r := of.ProviderResolutionDetail{Reason: of.ErrorReason, ResolutionError: of.NewTypeMismatchResolutionError(fmt.Sprintf("flag %q has the non-integer value %v", flag, f))}
					return of.IntResolutionDetail{Value: def, ProviderResolutionDetail: r}
				}
				v = int64(f)
			}
		}
	}
	return of.IntResolutionDetail{Value: v, ProviderResolutionDetail: p.resolution(d, key)}
}

// ObjectEvaluation evaluates a JSON flag: the value is the decoded JSON
// (map[string]any, []any, ...).
func (p *Provider) ObjectEvaluation(_ context.Context, flag string, def any, flat of.FlattenedContext) of.InterfaceResolutionDetail {
	key, attrs, bad := subject(flat)
	if bad != nil {
		return of.InterfaceResolutionDetail{Value: def, ProviderResolutionDetail: invalid(bad)}
	}
	v, d := p.client.GetJSONAssignmentDetails(flag, key, attrs, def)
	return of.InterfaceResolutionDetail{Value: v, ProviderResolutionDetail: p.resolution(d, key)}
}
