package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

func send(t *testing.T, f *fixture, method, path string, body []byte) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.api.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// TestInvalidUTF8IsRefused: a name with invalid UTF-8 is refused, not
// stored with U+FFFD (issue 10 item 14, management side).
func TestInvalidUTF8IsRefused(t *testing.T) {
	f := setup(t, "sqlite")
	resp, out := send(t, f, "POST", "/api/v1/sdk-keys", []byte("{\"name\":\"web\xff\",\"environment\":\"production\"}"))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(out), "UTF-8") {
		t.Fatalf("%d %v", resp.StatusCode, out)
	}
	keys, _ := f.api.SDKKeys(context.Background())
	if len(keys) != 0 {
		t.Fatalf("stored: %+v", keys)
	}
}

// TestLastAdminTokenConflict: revoking the last live admin token is a 409
// that says why.
func TestLastAdminTokenConflict(t *testing.T) {
	f := setup(t, "sqlite")
	ctx := context.Background()
	toks, _ := f.api.AdminTokens(ctx)
	err := f.api.RevokeAdminToken(ctx, toks[0].ID)
	apiError(t, err, http.StatusConflict, "")
	if !strings.Contains(err.Error(), "last live one") {
		t.Fatal(err)
	}
	if _, err := f.api.Environments(ctx); err != nil {
		t.Fatalf("the token stopped working: %v", err)
	}
}

// TestStartingAnExperimentTurnsTheFlagOn through PATCH, with a warning.
func TestStartingAnExperimentTurnsTheFlagOn(t *testing.T) {
	f := setup(t, "sqlite")
	ctx := context.Background()
	f.api.CreateFlag(ctx, colorFlag())
	s, err := f.api.AddAllocation(ctx, "production", "color", 0, core.Allocation{Key: "exp", Type: core.Experiment, Traffic: 5000,
		Weights: []core.Weight{{Variation: "control", Weight: 5000}, {Variation: "red", Weight: 5000}}})
	if err != nil || s.Enabled {
		t.Fatalf("draft: %+v %v", s, err)
	}
	running := core.Running
	s, err = f.api.PatchAllocation(ctx, "production", "color", "exp", s.Version, httpapi.AllocationPatch{Status: &running})
	if err != nil || !s.Enabled || len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "now on") {
		t.Fatalf("start: %+v %v", s, err)
	}
}

// TestAuditPagesByBytes: GET /api/v1/audit?limit=1000 over entries too
// large for one page answers a bounded page and a Link to the next.
func TestAuditPagesByBytes(t *testing.T) {
	f := setup(t, "sqlite")
	ctx := context.Background()
	// Twelve targeted lists of about 400 KB each: more than one 4 MiB page
	// of audit entries. Few long ids rather than many short ones keep each
	// write cheap under the race detector on a loaded machine.
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08d-", i) + strings.Repeat("x", 392)
	}
	list, _ := json.Marshal(ids)
	for i := range 12 {
		fl := colorFlag()
		fl.Key = fmt.Sprint("color-", i)
		if _, err := f.api.CreateFlag(ctx, fl); err != nil {
			t.Fatal(err)
		}
		_, err := f.api.AddAllocation(ctx, "production", fl.Key, 0, core.Allocation{Key: "t", Type: core.Targeted, Variation: "red",
			Rules: []core.Rule{{Conditions: []core.Condition{{Attribute: "id", Operator: "ONE_OF", Value: list}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	resp := get(t, f.url+"/api/v1/audit?limit=1000", map[string]string{"Authorization": "Bearer " + f.api.Token})
	n, _ := new(bytes.Buffer).ReadFrom(resp.Body)
	if n > 6<<20 {
		t.Fatalf("a page of %d bytes", n)
	}
	link := resp.Header.Get("Link")
	if !strings.Contains(link, `rel="next"`) || !strings.Contains(link, "before=") {
		t.Fatalf("Link: %q", link)
	}
}
