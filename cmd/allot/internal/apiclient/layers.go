package apiclient

import (
	"context"
	"net/url"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

func envPath(env string) string { return "/api/v1/environments/" + esc(env) }

// Layers lists the layers of env with their layouts.
func (c *Client) Layers(ctx context.Context, env string) ([]core.Layer, error) {
	var out []core.Layer
	return out, c.do(ctx, "GET", envPath(env)+"/layers", -1, nil, &out)
}

// Layer returns one layer with its layout.
func (c *Client) Layer(ctx context.Context, env, name string) (core.Layer, error) {
	var out core.Layer
	return out, c.do(ctx, "GET", envPath(env)+"/layers/"+esc(name), -1, nil, &out)
}

// CreateLayer creates an empty layer.
func (c *Client) CreateLayer(ctx context.Context, env, name string) (core.Layer, error) {
	var out core.Layer
	return out, c.do(ctx, "POST", envPath(env)+"/layers", -1, httpapi.CreateLayerRequest{Name: name}, &out)
}

// DeleteLayer deletes a layer without members.
func (c *Client) DeleteLayer(ctx context.Context, env, name string) error {
	return c.do(ctx, "DELETE", envPath(env)+"/layers/"+esc(name), -1, nil, nil)
}

// Holdouts lists the holdouts of env.
func (c *Client) Holdouts(ctx context.Context, env string) ([]core.Holdout, error) {
	var out []core.Holdout
	return out, c.do(ctx, "GET", envPath(env)+"/holdouts", -1, nil, &out)
}

// Holdout returns one holdout with its experiments.
func (c *Client) Holdout(ctx context.Context, env, key string) (core.Holdout, error) {
	var out core.Holdout
	return out, c.do(ctx, "GET", envPath(env)+"/holdouts/"+esc(key), -1, nil, &out)
}

// CreateHoldout creates a holdout of percent; a global one covers every
// experiment created in env from now on.
func (c *Client) CreateHoldout(ctx context.Context, env, key string, percent core.Percent, global bool) (core.Holdout, error) {
	var out core.Holdout
	return out, c.do(ctx, "POST", envPath(env)+"/holdouts", -1, httpapi.CreateHoldoutRequest{Key: key, Percent: percent, Global: global}, &out)
}

// AddHoldoutFlag puts an experiment in a holdout (req.Flag, req.Allocation,
// req.StatusQuo).
func (c *Client) AddHoldoutFlag(ctx context.Context, env, key string, req httpapi.HoldoutFlagRequest) (httpapi.HoldoutResponse, error) {
	var out httpapi.HoldoutResponse
	return out, c.do(ctx, "POST", envPath(env)+"/holdouts/"+esc(key)+"/flags", -1, req, &out)
}

// ShipHoldout records an experiment's winner (req.Flag, req.Allocation,
// req.Winner).
func (c *Client) ShipHoldout(ctx context.Context, env, key string, req httpapi.HoldoutFlagRequest) (httpapi.HoldoutResponse, error) {
	var out httpapi.HoldoutResponse
	return out, c.do(ctx, "POST", envPath(env)+"/holdouts/"+esc(key)+"/ship", -1, req, &out)
}

// RemoveHoldoutFlag takes a flag's experiment (alloc, "" when the flag has
// one) out of a holdout; confirm accepts moving the holdout's subjects of
// the flag when the experiment runs or shipped.
func (c *Client) RemoveHoldoutFlag(ctx context.Context, env, key, flag, alloc string, confirm bool) (httpapi.HoldoutResponse, error) {
	q := url.Values{}
	if alloc != "" {
		q.Set("allocation", alloc)
	}
	if confirm {
		q.Set("confirm", "true")
	}
	path := envPath(env) + "/holdouts/" + esc(key) + "/flags/" + esc(flag)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out httpapi.HoldoutResponse
	return out, c.do(ctx, "DELETE", path, -1, nil, &out)
}
