package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestLayerAndHoldoutStatuses: each refusal is its 4xx with a message
// naming the conflict, and changes nothing.
func TestLayerAndHoldoutStatuses(t *testing.T) {
	f := setup(t, "sqlite")
	cases := []struct {
		method, path, body string
		status             int
		says               string
	}{
		{"POST", "/api/v1/environments/production/layers", `{"name":"checkout"}`, http.StatusCreated, "layer-checkout-"},
		{"POST", "/api/v1/environments/production/layers", `{"name":"checkout"}`, http.StatusConflict, "already exists"},
		{"POST", "/api/v1/environments/production/layers", `{"name":"no spaces"}`, http.StatusBadRequest, "name"},
		{"POST", "/api/v1/environments/production/layers", `{"name":"x","salt":"mine"}`, http.StatusBadRequest, "salt"},
		{"POST", "/api/v1/environments/nope/layers", `{"name":"x"}`, http.StatusNotFound, "nope"},
		{"GET", "/api/v1/environments/production/layers/missing", ``, http.StatusNotFound, "missing"},
		{"POST", "/api/v1/flags", `{"key":"f","variationType":"STRING","variations":[{"key":"control","value":"a"},{"key":"treatment","value":"b"}]}`, http.StatusCreated, ""},
		{"POST", "/api/v1/environments/production/flags/f/allocations?version=0", `{"key":"exp","type":"experiment","traffic":100,"weights":[{"variation":"control","weight":50},{"variation":"treatment","weight":50}],"layer":{"name":"checkout","share":101}}`, http.StatusBadRequest, "layer"},
		{"POST", "/api/v1/environments/production/flags/f/allocations?version=0", `{"key":"exp","type":"experiment","traffic":100,"weights":[{"variation":"control","weight":50},{"variation":"treatment","weight":50}],"layer":{"name":"checkout","share":60}}`, http.StatusOK, `share:60`},
		{"DELETE", "/api/v1/environments/production/layers/checkout", ``, http.StatusConflict, "has 1 experiments"},
		{"POST", "/api/v1/environments/production/holdouts", `{"key":"q3","percent":60}`, http.StatusBadRequest, "percent"},
		{"POST", "/api/v1/environments/production/holdouts", `{"key":"q3","percent":10}`, http.StatusCreated, "q3"},
		{"POST", "/api/v1/environments/production/holdouts/q3/flags", `{"flag":"f","statusQuo":"purple"}`, http.StatusBadRequest, "purple"},
		{"POST", "/api/v1/environments/production/holdouts/q3/flags", `{"flag":"f"}`, http.StatusOK, "statusQuo:control"},
		{"POST", "/api/v1/environments/production/holdouts/q3/ship", `{"flag":"f"}`, http.StatusBadRequest, "winner"},
		{"POST", "/api/v1/environments/production/holdouts/q3/ship", `{"flag":"g","winner":"treatment"}`, http.StatusNotFound, "g"},
		{"POST", "/api/v1/environments/production/holdouts/q3/ship", `{"flag":"f","winner":"treatment"}`, http.StatusOK, "shipped:treatment"},
		{"DELETE", "/api/v1/environments/production/flags/f/allocations/exp?version=3", ``, http.StatusConflict, "in holdout q3"},
	}
	for _, c := range cases {
		resp, out := send(t, f, c.method, c.path, []byte(c.body))
		if resp.StatusCode != c.status || !strings.Contains(fmt.Sprint(out), c.says) {
			t.Fatalf("%s %s %s: %d %v; want %d saying %q", c.method, c.path, c.body, resp.StatusCode, out, c.status, c.says)
		}
	}
	ctx := context.Background()
	ls, err := f.api.Layers(ctx, "production")
	if err != nil || len(ls) != 1 || len(ls[0].Members) != 1 || ls[0].Free[0].Start != 6000 {
		t.Fatalf("layers: %+v %v", ls, err)
	}
	hs, err := f.api.Holdouts(ctx, "production")
	if err != nil || len(hs) != 1 || hs[0].Flags[0].Shipped != "treatment" {
		t.Fatalf("holdouts: %+v %v", hs, err)
	}
}
