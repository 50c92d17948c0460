package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// GET .../allocations/{alloc}/history lists an experiment's audited
// changes, oldest first, as the web UI's experiment page marks them.
func TestAllocationHistoryEndpoint(t *testing.T) {
	db, srv, tok := exportServer(t)
	c := core.New(db, core.Options{})
	ctx := core.WithActor(context.Background(), "tester")
	_, ch, err := c.CreateFlagWith(ctx, core.Flag{Key: "f", VariationType: "STRING", Variations: []core.Variation{
		{Key: "a", Value: json.RawMessage(`"a"`)}, {Key: "b", Value: json.RawMessage(`"b"`)}}},
		core.FlagSettings{Environment: "production", Allocations: []core.Allocation{{Key: "exp", Type: core.Experiment, Status: core.Running,
			Traffic: 1000, Weights: []core.Weight{{Variation: "a", Weight: 5000}, {Variation: "b", Weight: 5000}}}}})
	if err != nil {
		t.Fatal(err)
	}
	half := core.Percent(5000)
	if _, err := c.PatchAllocation(ctx, "production", "f", "exp", ch.After.Version, core.AllocationPatch{Traffic: &half}); err != nil {
		t.Fatal(err)
	}
	resp, body := getWith(t, srv.URL+"/api/v1/environments/production/flags/f/allocations/exp/history", tok)
	var h core.AllocationHistory
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &h) != nil || !h.Complete || len(h.Events) != 2 ||
		h.Events[1].Kinds[0] != "traffic" || h.Events[1].Before.Traffic != 1000 || h.Events[1].After.Traffic != 5000 || h.Events[1].Actor != "tester" {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if resp, body := getWith(t, srv.URL+"/api/v1/environments/production/flags/nope/allocations/exp/history", tok); resp.StatusCode != 404 {
		t.Fatalf("unknown flag: %d %s", resp.StatusCode, body)
	}
	if resp, _ := getWith(t, srv.URL+"/api/v1/environments/production/flags/f/allocations/exp/history", "wrong"); resp.StatusCode != 401 {
		t.Fatalf("without a token: %d", resp.StatusCode)
	}
}
