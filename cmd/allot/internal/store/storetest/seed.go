package storetest

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// SeedExperiment writes n assignment rows of allocation alloc of flag in
// env straight into the SQLite database at path (a recursive CTE: 2
// variations, 2 events per subject, evenly spread over the
// days from t0; each subject sees one variation), then rebuilds the aggregates through db. Benchmarks use it
// to reach a million rows in seconds.
func SeedExperiment(tb testing.TB, db *store.DB, path, env, flag, alloc string, n int, t0 time.Time, days int) {
	tb.Helper()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer raw.Close()
	start := t0.UnixMicro()
	step := int64(days) * 24 * int64(time.Hour/time.Microsecond) / int64(n)
	q := fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
		INSERT INTO assignments (event_id, environment, experiment, feature_flag, allocation, variation, subject, subject_attributes, timestamp, sdk_name, sdk_version, received_at)
		SELECT 'e' || i, ?, ?, ?, ?, CASE WHEN (i / 2) %% 2 = 0 THEN 'control' ELSE 'treatment' END,
			'user-' || (i / 2), '{}', %d + i * %d, 'go', '1', 0 FROM s`, n-1, start, step)
	if _, err := raw.Exec(q, env, flag+"-"+alloc, flag, alloc); err != nil {
		tb.Fatal(err)
	}
	if err := db.RebuildAggregates(context.Background()); err != nil {
		tb.Fatal(err)
	}
}
