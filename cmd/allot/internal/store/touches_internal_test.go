package store

import (
	"context"
	"testing"
	"time"
)

// TestTouchesFolded: returning subjects' last seen and exposure deltas wait
// in first_exposure_touches, the writer folds them once enough have
// accumulated, and first_exposures then holds the right counts without
// anyone asking.
func TestTouchesFolded(t *testing.T) {
	db, _ := openSQLite(t)
	ctx := context.Background()
	defer func(n int64) { foldEvery = n }(foldEvery)
	foldEvery = 25
	t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	count := func(q string) int64 {
		var n int64
		if err := db.db.QueryRowContext(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for round := range 4 {
		rows := rowsAt(10, string(rune('a'+round)), t0.Add(time.Duration(round)*time.Hour))
		for i := range rows {
			rows[i].Subject = "s" + string(rune('0'+i)) // the same 10 subjects every round
		}
		if _, err := db.InsertAssignments(ctx, rows); err != nil {
			t.Fatal(err)
		}
		touches := count(`SELECT COUNT(*) FROM first_exposure_touches`)
		switch round {
		case 0:
			if touches != 0 {
				t.Fatalf("round 0: %d touches for new subjects", touches)
			}
		case 1, 2:
			if touches != int64(10*round) {
				t.Fatalf("round %d: %d touches, want %d", round, touches, 10*round)
			}
		case 3: // 30 touches crossed foldEvery: folded after the commit
			if touches != 0 {
				t.Fatalf("round 3: %d touches left, want them folded", touches)
			}
		}
	}
	if n := count(`SELECT SUM(exposures) FROM first_exposures`); n != 40 {
		t.Fatalf("exposures %d after the fold, want 40", n)
	}
	if last := count(`SELECT MIN(last_seen) FROM first_exposures`); last < t0.Add(3*time.Hour).UnixMicro() {
		t.Fatalf("last_seen %d not moved to the last round", last)
	}
}
