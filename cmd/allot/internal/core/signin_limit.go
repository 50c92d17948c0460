package core

import (
	"crypto/rand"
	"sync"
	"time"
)

// Sign-in rate limit: after SigninFailures failed sign-ins within
// SigninWindow from one client address, or for one account, further tries
// from it or for it are refused (ERATELIMITED, with when to retry) until
// the oldest failure leaves the window. Failures are counted, not
// successes, so a team behind one address is not locked out by its own use.
const (
	SigninFailures = 5
	SigninWindow   = time.Minute
	// maxSigninKeys bounds the memory of the limiter; once reached,
	// expired entries are swept, and new keys beyond it go untracked
	// until some expire (the per-account limit still holds for them).
	maxSigninKeys = 100_000
)

type signinLimiter struct {
	mu    sync.Mutex
	fails map[string][]time.Time // the failures within the window, oldest first
}

func (l *signinLimiter) blocked(now time.Time, keys ...string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		f := live(l.fails[k], now)
		if len(f) >= SigninFailures {
			wait = max(wait, f[len(f)-SigninFailures].Add(SigninWindow).Sub(now))
		}
	}
	return wait
}

func (l *signinLimiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails == nil {
		l.fails = map[string][]time.Time{}
	}
	for _, k := range keys {
		f, ok := l.fails[k]
		if !ok && len(l.fails) >= maxSigninKeys {
			for k2, f2 := range l.fails {
				if len(live(f2, now)) == 0 {
					delete(l.fails, k2)
				}
			}
			if len(l.fails) >= maxSigninKeys {
				continue
			}
		}
		f = append(live(f, now), now)
		if len(f) > SigninFailures {
			f = f[len(f)-SigninFailures:]
		}
		l.fails[k] = f
	}
}

// live drops the failures older than the window.
func live(f []time.Time, now time.Time) []time.Time {
	i := 0
	for i < len(f) && now.Sub(f[i]) >= SigninWindow {
		i++
	}
	return f[i:]
}

func randRead(b []byte) { rand.Read(b) } // never fails (crypto/rand panics rather than return an error)
