package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
)

// Change notification between replicas on PostgreSQL. Every revision bump
// sends NOTIFY on changesChannel in the transaction that bumps (so it is
// delivered at commit, and only if the change commits); each replica
// listens on a dedicated connection and refreshes at once, rather than at
// its next revision poll, which stays as the fallback. SQLite, one process
// per file, needs none of this.

// changesChannel is the NOTIFY channel; the payload is the environment
// whose revision moved ("" for all of them).
const changesChannel = "allot_changes"

// notify queues a change notification in the transaction (PostgreSQL only).
func (t *tx) notify(env string) error {
	if !t.d.postgres {
		return nil
	}
	_, err := t.exec(`SELECT pg_notify('`+changesChannel+`', ?)`, env)
	return err
}

// Listen calls changed with the environment named by each change
// notification until ctx ends, on a connection of its own, reconnecting
// after failures with backoff. changed is also called with "" each time
// listening (re)starts, since changes committed while not listening were
// not heard. On SQLite it returns at once.
func (d *DB) Listen(ctx context.Context, changed func(env string)) {
	if !d.postgres {
		return
	}
	failures := 0
	for {
		err := d.listen(ctx, func(env string) {
			failures = 0
			changed(env)
		})
		if ctx.Err() != nil {
			return
		}
		failures++
		wait := min(time.Second<<min(failures-1, 5), 30*time.Second)
		d.log.Warn("listening for changes failed; the revision poll still brings them", "err", err, "retryIn", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen holds one connection in LISTEN until it fails or ctx ends. The
// connection never goes back to the pool: it would still be listening.
func (d *DB) listen(ctx context.Context, changed func(env string)) error {
	conn, err := d.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: listen: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("not a pgx connection: %T", dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+changesChannel); err != nil {
			return errors.Join(err, driver.ErrBadConn)
		}
		changed("")
		for {
			n, err := pc.WaitForNotification(ctx)
			if err != nil {
				return errors.Join(err, driver.ErrBadConn) // discard the connection
			}
			changed(n.Payload)
		}
	})
	return fmt.Errorf("store: listen: %w", err)
}
