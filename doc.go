// Package allot is the Go SDK of Allot, a self-hosted experiment
// randomization system: it tells which variation of an experiment, or
// which value of a feature flag, a subject gets, and logs the assignment
// for analysis.
//
// # Initialise once
//
// A process creates one client at start-up and closes it at shutdown:
//
//	client, err := allot.Init(ctx, allot.Config{
//		SDKKey:  os.Getenv("ALLOT_SDK_KEY"),
//		BaseURL: "https://allot.internal/api",
//		AssignmentLogger: myLogger,
//	})
//	if err != nil {
//		// The client works anyway: it serves defaults (or the cached
//		// configuration) until the configuration arrives.
//		log.Printf("allot: %v", err)
//	}
//	defer client.Close(context.Background())
//
// Init waits for the first configuration until ctx ends or
// Config.InitTimeout passes; allot.Instance returns the client from
// anywhere afterwards. NewClient makes an independent client (tests,
// hosts serving several tenants). Every zero field of Config has a
// sensible default.
//
// # Assign
//
// The getters compute the assignment in memory from the last
// configuration: no I/O, no locks, no allocation in the common case, and
// no panics. They are safe for concurrent use.
//
//	variation, ok := client.GetAssignment("checkout-experiment", userID, allot.Attributes{"country": "FR"})
//	if !ok {
//		// Not in the experiment (not running, or outside its traffic): show
//		// the default experience.
//	}
//	color := client.GetStringAssignment("button-color", userID, nil, "blue")
//
// Typed getters exist for STRING, BOOLEAN, INTEGER, NUMERIC and JSON flags,
// each with a ...Details form that says why a value was chosen. A flag
// that is unknown, disabled, of another type, or that has no allocation
// for the subject returns the caller's default.
//
// Subjects are assigned by hashing their key, so the same subject gets the
// same variation in every process and in every SDK that reads Allot's (or
// Eppo's) configuration format.
//
// # Configuration
//
// A background goroutine fetches {BaseURL}/flag-config/v1/config every
// Config.PollInterval (30 s by default, with jitter), with If-None-Match,
// and swaps a new configuration in atomically. Failures back off
// exponentially (honouring Retry-After) and never replace the last good
// configuration. A second goroutine holds a stream of server-sent events
// open ({BaseURL}/flag-config/v1/stream) through which each change arrives
// as soon as it is published; when the stream fails it is reopened with
// backoff while polling carries on, and Config.DisableStreaming turns it
// off. Config.InitialConfiguration serves a configuration before or without
// the network, and Config.CacheFile keeps the last good one on disk so that
// a restart during a server outage still serves it. Client.Status reports
// readiness, the mode (streaming or polling), the configuration's age,
// fetch failures and dropped events, for health checks.
//
// # Assignment logging
//
// Config.AssignmentLogger receives an AssignmentEvent for each assignment
// that an experiment logs, to store in the warehouse's assignment table.
// Events go through sharded batches, in a buffer sized for bursts, to one
// goroutine, so a slow logger never slows the caller; only a full buffer
// drops events, and loudly (Status().EventsDropped, Config.OnEventsDropped,
// a warning). Repeated assignments of the same variation to the same
// subject are logged once, using a bounded lock-free cache
// (Config.DedupCacheSize, Config.DisableDedup). Flush and Close deliver
// what is buffered.
//
// # Testing
//
// Package allottest builds clients with fixed assignments and no network,
// for unit tests of code that uses this package.
package allot
