package apiclient

import (
	"context"
	"net/url"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

// ArchiveFlag archives a flag at version: no environment publishes it.
func (c *Client) ArchiveFlag(ctx context.Context, key string, version int64) (core.Flag, error) {
	var out core.Flag
	return out, c.do(ctx, "POST", "/api/v1/flags/"+esc(key)+"/archive", version, nil, &out)
}

// RestoreFlag restores an archived flag at version.
func (c *Client) RestoreFlag(ctx context.Context, key string, version int64) (core.Flag, error) {
	var out core.Flag
	return out, c.do(ctx, "POST", "/api/v1/flags/"+esc(key)+"/restore", version, nil, &out)
}

// DiffSettings says what copying a flag's settings from one environment
// to another would change.
func (c *Client) DiffSettings(ctx context.Context, flag, from, to string) (httpapi.DiffResponse, error) {
	var out httpapi.DiffResponse
	q := url.Values{"from": {from}, "to": {to}}
	return out, c.do(ctx, "GET", "/api/v1/flags/"+esc(flag)+"/diff?"+q.Encode(), -1, nil, &out)
}

// CopySettings copies a flag's settings from one environment to another;
// toVersion is the version of the settings in to that the diff showed.
func (c *Client) CopySettings(ctx context.Context, flag, from, to string, toVersion int64) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "POST", "/api/v1/flags/"+esc(flag)+"/copy", toVersion, httpapi.CopyRequest{From: from, To: to, Version: toVersion}, &out)
}

// ReplaceAllocation replaces an allocation (same key) at version.
func (c *Client) ReplaceAllocation(ctx context.Context, env, flag, alloc string, version int64, a core.Allocation) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "PUT", settingsPath(env, flag)+"/allocations/"+esc(alloc), version, a, &out)
}

// MoveAllocation moves an allocation to position (0 first) at version.
func (c *Client) MoveAllocation(ctx context.Context, env, flag, alloc string, version int64, position int) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "POST", settingsPath(env, flag)+"/allocations/"+esc(alloc)+"/move", version, httpapi.MoveRequest{Position: position}, &out)
}
