package store

import (
	"context"
	"strconv"
)

// ProbeWrite writes one small row, so that readiness notices a database that
// answers reads but refuses writes (a full disk: SQLITE_FULL, PostgreSQL's
// disk_full; a read-only replica or file).
func (d *DB) ProbeWrite(ctx context.Context) error {
	_, err := d.db.ExecContext(ctx, d.q(`INSERT INTO meta (key, value) VALUES ('probe', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`),
		strconv.FormatInt(micros(d.now()), 10))
	return err
}
