package publish

import "sync"

// Change fan-out. Server-sent event streams subscribe to an environment and
// hear the ETag of each configuration published for it, on this replica
// (after a change made here, or after a refresh that picked up a change
// made through another replica).
//
// A subscriber's channel holds one value: a slow reader is never waited
// for, and a pending ETag is replaced by a newer one, since a stream only
// ever needs to announce the latest configuration (it reads it from the
// cache anyway). Nothing is lost: the latest value is always delivered.

// hub holds the subscribers of every environment. Its zero value is ready.
type hub struct {
	mu   sync.Mutex
	subs map[string]map[chan string]struct{}
}

// Subscribe returns a channel that receives the ETag of every configuration
// published for env from now on (coalesced: only the latest pending one),
// and a function that ends the subscription; call it once the channel is no
// longer read. The channel is never closed.
func (c *Cache) Subscribe(env string) (<-chan string, func()) {
	h := &c.subs
	ch := make(chan string, 1)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[string]map[chan string]struct{}{}
	}
	m := h.subs[env]
	if m == nil {
		m = map[chan string]struct{}{}
		h.subs[env] = m
	}
	m[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			if m := h.subs[env]; m != nil {
				delete(m, ch)
				if len(m) == 0 {
					delete(h.subs, env)
				}
			}
		})
	}
}

// Subscribers returns the number of live subscriptions (metrics, tests).
func (c *Cache) Subscribers() int {
	h := &c.subs
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.subs {
		n += len(m)
	}
	return n
}

// published tells the subscribers of every environment whose configuration
// differs between old and next. It never blocks.
func (c *Cache) published(old, next *state) {
	h := &c.subs
	h.mu.Lock()
	defer h.mu.Unlock()
	for env, p := range next.envs {
		if old != nil && (old.envs[env] == p || old.envs[env] != nil && old.envs[env].ETag == p.ETag) {
			continue // the same document: a rebuild for a key, say
		}
		for ch := range h.subs[env] {
			send(ch, p.ETag)
		}
	}
}

// send puts v in ch, replacing a value not yet read. Only published sends,
// under the hub's lock, so the second attempt cannot fail.
func send(ch chan string, v string) {
	select {
	case ch <- v:
		return
	default:
	}
	select {
	case <-ch:
	default:
	}
	select {
	case ch <- v:
	default:
	}
}
