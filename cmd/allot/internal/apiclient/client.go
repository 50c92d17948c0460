// Package apiclient is a Go client for Allot's management API. The allot
// CLI uses it, and so do the server's integration tests.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

// Client calls one server with one admin token.
type Client struct {
	BaseURL string // such as http://127.0.0.1:8080
	Token   string // an admin token
	HTTP    *http.Client
}

// New returns a client for baseURL with token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Error is an error answer from the server.
type Error struct {
	Status int
	httpapi.ErrorDetail
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Field != "" && !strings.HasPrefix(msg, e.Field+":") {
		msg = e.Field + ": " + msg
	}
	return fmt.Sprintf("%s (HTTP %d %s)", msg, e.Status, e.Code)
}

// IsConflict reports whether err is a version conflict.
func IsConflict(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Code == core.ECONFLICT
}

// do sends a request; ifMatch < 0 sends no If-Match.
func (c *Client) do(ctx context.Context, method, path string, ifMatch int64, in, out any) error {
	var body io.Reader
	if raw, ok := in.(rawBody); ok {
		body = bytes.NewReader(raw)
	} else if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch >= 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(ifMatch, 10)+`"`)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		return errorFrom(resp.StatusCode, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = data
		return nil
	}
	return json.Unmarshal(data, out)
}

// errorFrom turns an error answer into an *Error.
func errorFrom(status int, body []byte) *Error {
	var eb httpapi.ErrorBody
	if json.Unmarshal(body, &eb) != nil || eb.Error.Code == "" {
		eb.Error = httpapi.ErrorDetail{Code: "http", Message: strings.TrimSpace(string(body))}
	}
	return &Error{Status: status, ErrorDetail: eb.Error}
}

func esc(s string) string { return url.PathEscape(s) }

// ExportQuery selects the rows of an assignment table export. Zero fields
// do not filter; Format is csv (default), jsonl or parquet. Table is
// assignments (default) or first-exposures (then Allocation may filter, and
// Experiment, From and To must be zero).
type ExportQuery struct {
	Environment, Flag, Experiment string
	From, To                      time.Time
	Format                        string
	Table, Allocation             string
}

// ExportAssignments streams the assignment table to w. Unlike the other
// calls it has no overall timeout (a table can be large): ctx bounds it.
func (c *Client) ExportAssignments(ctx context.Context, q ExportQuery, w io.Writer) error {
	v := url.Values{}
	for k, val := range map[string]string{"environment": q.Environment, "flag": q.Flag, "experiment": q.Experiment, "format": q.Format,
		"table": q.Table, "allocation": q.Allocation} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.Format(time.RFC3339Nano))
	}
	req, err := http.NewRequestWithContext(ctx, "GET", c.BaseURL+"/api/v1/assignments?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := http.DefaultClient
	if c.HTTP != nil {
		copied := *c.HTTP
		copied.Timeout = 0
		hc = &copied
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return errorFrom(resp.StatusCode, data)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}

// Environments lists environments.
func (c *Client) Environments(ctx context.Context) ([]core.Environment, error) {
	var out []core.Environment
	return out, c.do(ctx, "GET", "/api/v1/environments", -1, nil, &out)
}

// CreateEnvironment creates an environment.
func (c *Client) CreateEnvironment(ctx context.Context, name string) (core.Environment, error) {
	var out core.Environment
	return out, c.do(ctx, "POST", "/api/v1/environments", -1, httpapi.CreateEnvironmentRequest{Name: name}, &out)
}

// Flags lists flag definitions.
func (c *Client) Flags(ctx context.Context) ([]core.Flag, error) {
	var out []core.Flag
	return out, c.do(ctx, "GET", "/api/v1/flags", -1, nil, &out)
}

// Flag returns a flag definition.
func (c *Client) Flag(ctx context.Context, key string) (core.Flag, error) {
	var out core.Flag
	return out, c.do(ctx, "GET", "/api/v1/flags/"+esc(key), -1, nil, &out)
}

// CreateFlag creates a flag (off in every environment).
func (c *Client) CreateFlag(ctx context.Context, f core.Flag) (core.Flag, error) {
	var out core.Flag
	return out, c.do(ctx, "POST", "/api/v1/flags", -1, f, &out)
}

// UpdateFlag replaces a flag's description and variations; f.Version must
// be the version read.
func (c *Client) UpdateFlag(ctx context.Context, f core.Flag) (core.Flag, error) {
	var out core.Flag
	return out, c.do(ctx, "PUT", "/api/v1/flags/"+esc(f.Key), f.Version, f, &out)
}

// DeleteFlag deletes a flag at version.
func (c *Client) DeleteFlag(ctx context.Context, key string, version int64) error {
	return c.do(ctx, "DELETE", "/api/v1/flags/"+esc(key), version, nil, nil)
}

func settingsPath(env, flag string) string {
	return "/api/v1/environments/" + esc(env) + "/flags/" + esc(flag)
}

// Settings returns a flag's settings in an environment.
func (c *Client) Settings(ctx context.Context, env, flag string) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "GET", settingsPath(env, flag), -1, nil, &out)
}

// PutSettings replaces a flag's settings in an environment; s.Version must
// be the version read (0 if never written).
func (c *Client) PutSettings(ctx context.Context, s core.FlagSettings) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "PUT", settingsPath(s.Environment, s.Flag), s.Version, s, &out)
}

// AddAllocation appends an allocation to a flag's settings at version.
func (c *Client) AddAllocation(ctx context.Context, env, flag string, version int64, a core.Allocation) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "POST", settingsPath(env, flag)+"/allocations", version, a, &out)
}

// PatchAllocation changes some fields of an allocation at version.
func (c *Client) PatchAllocation(ctx context.Context, env, flag, alloc string, version int64, p httpapi.AllocationPatch) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "PATCH", settingsPath(env, flag)+"/allocations/"+esc(alloc), version, p, &out)
}

// DeleteAllocation removes an allocation at version.
func (c *Client) DeleteAllocation(ctx context.Context, env, flag, alloc string, version int64) (httpapi.SettingsResponse, error) {
	var out httpapi.SettingsResponse
	return out, c.do(ctx, "DELETE", settingsPath(env, flag)+"/allocations/"+esc(alloc), version, nil, &out)
}

// Evaluate asks the server's engine what a subject gets.
func (c *Client) Evaluate(ctx context.Context, env string, req httpapi.EvaluateRequest) (httpapi.EvaluateResponse, error) {
	var out httpapi.EvaluateResponse
	return out, c.do(ctx, "POST", "/api/v1/environments/"+esc(env)+"/evaluate", -1, req, &out)
}

// Config returns the UFC document the server publishes for env.
func (c *Client) Config(ctx context.Context, env string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.do(ctx, "GET", "/api/v1/environments/"+esc(env)+"/config", -1, nil, &out)
}

// SDKKeys lists SDK keys.
func (c *Client) SDKKeys(ctx context.Context) ([]core.SDKKey, error) {
	var out []core.SDKKey
	return out, c.do(ctx, "GET", "/api/v1/sdk-keys", -1, nil, &out)
}

// CreateSDKKey creates an SDK key; the answer holds its secret, once.
func (c *Client) CreateSDKKey(ctx context.Context, env, name string) (core.SDKKey, error) {
	var out core.SDKKey
	return out, c.do(ctx, "POST", "/api/v1/sdk-keys", -1, httpapi.CreateKeyRequest{Name: name, Environment: env}, &out)
}

// CreateClientKey creates a client key, usable from the given web origins
// (none: any); the answer holds its secret, once.
func (c *Client) CreateClientKey(ctx context.Context, env, name string, origins []string) (core.SDKKey, error) {
	var out core.SDKKey
	return out, c.do(ctx, "POST", "/api/v1/sdk-keys", -1, httpapi.CreateKeyRequest{Name: name, Environment: env, Kind: core.KeyClient, Origins: origins}, &out)
}

// RevokeSDKKey revokes an SDK key.
func (c *Client) RevokeSDKKey(ctx context.Context, id int64) error {
	return c.do(ctx, "DELETE", "/api/v1/sdk-keys/"+strconv.FormatInt(id, 10), -1, nil, nil)
}

// AdminTokens lists admin tokens.
func (c *Client) AdminTokens(ctx context.Context) ([]core.AdminToken, error) {
	var out []core.AdminToken
	return out, c.do(ctx, "GET", "/api/v1/admin-tokens", -1, nil, &out)
}

// CreateAdminToken creates an admin token; the answer holds its secret, once.
func (c *Client) CreateAdminToken(ctx context.Context, name string) (core.AdminToken, error) {
	var out core.AdminToken
	return out, c.do(ctx, "POST", "/api/v1/admin-tokens", -1, httpapi.CreateKeyRequest{Name: name}, &out)
}

// RevokeAdminToken revokes an admin token.
func (c *Client) RevokeAdminToken(ctx context.Context, id int64) error {
	return c.do(ctx, "DELETE", "/api/v1/admin-tokens/"+strconv.FormatInt(id, 10), -1, nil, nil)
}

// Audit returns audit entries, newest first; before 0 starts at the newest.
func (c *Client) Audit(ctx context.Context, limit int, before int64) ([]core.AuditEntry, error) {
	var out []core.AuditEntry
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if before > 0 {
		q.Set("before", strconv.FormatInt(before, 10))
	}
	path := "/api/v1/audit"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return out, c.do(ctx, "GET", path, -1, nil, &out)
}

// AllocationHistory returns an allocation's audited changes, oldest first.
func (c *Client) AllocationHistory(ctx context.Context, env, flag, alloc string) (core.AllocationHistory, error) {
	var out core.AllocationHistory
	return out, c.do(ctx, "GET", settingsPath(env, flag)+"/allocations/"+esc(alloc)+"/history", -1, nil, &out)
}

// AssignmentSummary returns an allocation's assignment counts and, for an
// experiment, its sample ratio mismatch check.
func (c *Client) AssignmentSummary(ctx context.Context, env, flag, alloc string) (httpapi.SummaryResponse, error) {
	var out httpapi.SummaryResponse
	return out, c.do(ctx, "GET", settingsPath(env, flag)+"/allocations/"+esc(alloc)+"/summary", -1, nil, &out)
}

// ImportOptions are the options of Import.
type ImportOptions struct {
	Names      []string // resolve an obfuscated CLIENT document's hashes
	DryRun     bool
	KeepFaults bool
}

// Import loads a UFC document into an environment and returns the report.
func (c *Client) Import(ctx context.Context, env string, document []byte, o ImportOptions) (core.ImportReport, error) {
	var rep core.ImportReport
	path := "/api/v1/environments/" + esc(env) + "/import"
	var in any = httpapi.ImportRequest{Document: document, Names: o.Names, DryRun: o.DryRun, KeepFaults: o.KeepFaults}
	if len(o.Names) == 0 {
		// The document as it is: the server's reader names the line and
		// column of a problem in the file itself.
		in = rawBody(document)
		q := url.Values{}
		if o.DryRun {
			q.Set("dryRun", "true")
		}
		if o.KeepFaults {
			q.Set("keepFaults", "true")
		}
		if len(q) > 0 {
			path += "?" + q.Encode()
		}
	}
	err := c.do(ctx, http.MethodPost, path, -1, in, &rep)
	return rep, err
}

// rawBody is a request body sent as it is.
type rawBody []byte

// SetKeyOrigins replaces a client key's allowed origins (none: any).
func (c *Client) SetKeyOrigins(ctx context.Context, id int64, origins []string) (core.SDKKey, error) {
	var k core.SDKKey
	if origins == nil {
		origins = []string{}
	}
	err := c.do(ctx, http.MethodPut, "/api/v1/sdk-keys/"+strconv.FormatInt(id, 10)+"/origins", -1, httpapi.KeyOriginsRequest{Origins: origins}, &k)
	return k, err
}
