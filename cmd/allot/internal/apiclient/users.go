package apiclient

import (
	"context"
	"strconv"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
)

// Me returns the account and token the client acts as.
func (c *Client) Me(ctx context.Context) (httpapi.Me, error) {
	var out httpapi.Me
	return out, c.do(ctx, "GET", "/api/v1/me", -1, nil, &out)
}

// Users lists the accounts.
func (c *Client) Users(ctx context.Context) ([]core.User, error) {
	var out []core.User
	return out, c.do(ctx, "GET", "/api/v1/users", -1, nil, &out)
}

// CreateUser creates an account.
func (c *Client) CreateUser(ctx context.Context, email, password string, role core.Role) (core.User, error) {
	var out core.User
	return out, c.do(ctx, "POST", "/api/v1/users", -1, httpapi.CreateUserRequest{Email: email, Password: password, Role: role}, &out)
}

func userPath(id int64, tail string) string {
	return "/api/v1/users/" + strconv.FormatInt(id, 10) + tail
}

// SetUserRole sets an account's role, or with env its role in that
// environment (role "" removing it).
func (c *Client) SetUserRole(ctx context.Context, id int64, role core.Role, env string) (core.User, error) {
	var out core.User
	return out, c.do(ctx, "PUT", userPath(id, "/role"), -1, httpapi.SetRoleRequest{Role: role, Environment: env}, &out)
}

// DisableUser disables an account; EnableUser enables it again.
func (c *Client) DisableUser(ctx context.Context, id int64) (core.User, error) {
	var out core.User
	return out, c.do(ctx, "POST", userPath(id, "/disable"), -1, nil, &out)
}

// EnableUser enables a disabled account.
func (c *Client) EnableUser(ctx context.Context, id int64) (core.User, error) {
	var out core.User
	return out, c.do(ctx, "POST", userPath(id, "/enable"), -1, nil, &out)
}

// SetPassword sets an account's password.
func (c *Client) SetPassword(ctx context.Context, id int64, password string) error {
	return c.do(ctx, "PUT", userPath(id, "/password"), -1, httpapi.SetPasswordRequest{Password: password}, nil)
}

// CreateToken creates an API token of the client's account with role (""
// for the account's own); the answer holds its secret, once.
func (c *Client) CreateToken(ctx context.Context, name string, role core.Role) (core.AdminToken, error) {
	var out core.AdminToken
	return out, c.do(ctx, "POST", "/api/v1/admin-tokens", -1, httpapi.CreateKeyRequest{Name: name, Role: role}, &out)
}
