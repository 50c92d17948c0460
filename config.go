package allot

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults applied to the zero fields of Config.
const (
	// DefaultBaseURL is where a local Allot server answers; it includes the
	// /api prefix, to which the SDK appends /flag-config/v1/config.
	DefaultBaseURL = "http://localhost:8080/api"
	// DefaultPollInterval is the time between two configuration fetches.
	// Each wait is shortened by a random amount of up to a tenth of it, so
	// that a fleet of processes does not poll in lockstep.
	DefaultPollInterval = 30 * time.Second
	// DefaultMaxBackoff caps the wait after consecutive failed fetches.
	DefaultMaxBackoff = 5 * time.Minute
	// DefaultInitTimeout bounds how long Init and NewClient wait for the
	// first configuration.
	DefaultInitTimeout = 5 * time.Second
	// DefaultRequestTimeout bounds one configuration request.
	DefaultRequestTimeout = 10 * time.Second
	// DefaultEventQueueSize is how many assignment events may wait for the
	// logger before new ones are dropped: about a tenth of a second of what
	// two cores can assign to new subjects, so that a burst, or a logging
	// pipeline kept off the processor for a while, loses nothing. The
	// buffer grows to it only during such a burst (about 100 bytes an
	// event, plus the attributes: 26 MB at most).
	DefaultEventQueueSize = 1 << 18
	// DefaultDedupCacheSize is how many (flag, subject) pairs the assignment
	// de-duplication cache remembers, at 8 bytes each (2 MiB).
	DefaultDedupCacheSize = 1 << 18
)

// SDKName and Version identify this SDK to the server (the sdkName and
// sdkVersion query parameters) and in assignment events.
const (
	SDKName = "go-allot"
	Version = "0.1.0"
)

// Config configures a Client. The zero value is valid: it streams changes
// from a local server, polls it every 30 seconds as the fallback, logs nothing, and serves defaults until a
// configuration arrives.
type Config struct {
	// SDKKey selects the environment on the server. It is sent as the
	// apiKey query parameter and never logged.
	SDKKey string
	// BaseURL is the server's API root, /api included
	// (default DefaultBaseURL).
	BaseURL string
	// HTTPClient makes the requests (default: a client with
	// DefaultRequestTimeout).
	HTTPClient *http.Client

	// PollInterval is the time between fetches (default DefaultPollInterval).
	PollInterval time.Duration
	// MaxBackoff caps the exponential backoff after failures
	// (default DefaultMaxBackoff).
	MaxBackoff time.Duration
	// InitTimeout bounds how long Init and NewClient wait for the first
	// configuration, in addition to the context (default DefaultInitTimeout).
	// A negative value does not wait at all.
	InitTimeout time.Duration
	// DisableStreaming turns off the configuration stream: the client only
	// polls. By default it also holds a stream open
	// (/flag-config/v1/stream), through which a change arrives as soon as it
	// is published, and keeps polling as the fallback.
	DisableStreaming bool
	// Offline disables the network: the client serves InitialConfiguration,
	// the cache file, or defaults, and never polls.
	Offline bool

	// InitialConfiguration is a UFC document served until a newer one is
	// fetched. It lets a process start without the network.
	InitialConfiguration []byte
	// CacheFile, if set, is where each good configuration is written
	// (atomically) and from where it is read at start, so that a restart
	// during a server outage still serves the last known configuration.
	// When both are present, the newer of CacheFile and InitialConfiguration
	// (by createdAt) wins.
	CacheFile string

	// AssignmentLogger receives assignment events, off the assignment path.
	// Nil logs nothing.
	AssignmentLogger AssignmentLogger
	// EventQueueSize bounds the events waiting for the logger
	// (default DefaultEventQueueSize). When the buffer is full, new events
	// are dropped: counted in Status().EventsDropped, reported to
	// OnEventsDropped and logged as a warning, once per 10 seconds while
	// drops go on.
	EventQueueSize int
	// OnEventsDropped, if set, is called from the logging goroutine with
	// the number of events dropped since its last call, at most once per
	// 10 seconds while events are being dropped: a hook for an alert or a
	// metric. It must not block.
	OnEventsDropped func(dropped uint64)
	// DedupCacheSize is how many (flag, subject) pairs are remembered to skip
	// logging an assignment that has not changed (default
	// DefaultDedupCacheSize), at 8 bytes each; rounded up to a power of
	// two. See DisableDedup.
	DedupCacheSize int
	// DisableDedup logs every assignment, repeated or not.
	DisableDedup bool

	// Logger receives the SDK's own diagnostics (default: discarded).
	Logger *slog.Logger

	// now is the clock; tests pin it.
	now func() time.Time
	// streamIdle is how long a silent stream is kept (default
	// streamIdleTimeout); tests shorten it.
	streamIdle time.Duration
}

func (c Config) withDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	for len(c.BaseURL) > 1 && c.BaseURL[len(c.BaseURL)-1] == '/' {
		c.BaseURL = c.BaseURL[:len(c.BaseURL)-1]
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultRequestTimeout}
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.PollInterval {
		c.MaxBackoff = c.PollInterval
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.EventQueueSize <= 0 {
		c.EventQueueSize = DefaultEventQueueSize
	}
	if c.DedupCacheSize <= 0 {
		c.DedupCacheSize = DefaultDedupCacheSize
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.streamIdle <= 0 {
		c.streamIdle = streamIdleTimeout
	}
	return c
}
