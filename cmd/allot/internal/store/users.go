package store

import (
	"database/sql"
	"errors"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// ---- accounts (migration 0010)

const userColumns = `id, email, password_hash, role, created_at, disabled_at`

func scanUser(sc interface{ Scan(...any) error }) (core.User, string, error) {
	var u core.User
	var hash, role string
	var created int64
	var disabled sql.NullInt64
	if err := sc.Scan(&u.ID, &u.Email, &hash, &role, &created, &disabled); err != nil {
		return u, "", err
	}
	u.Role, u.HasPassword = core.Role(role), hash != ""
	u.CreatedAt, u.DisabledAt = fromMicros(created), fromNullMicros(disabled)
	return u, hash, nil
}

// envRoles reads the per-environment roles of one account (id > 0) or of
// all (id 0), by account id.
func (t *tx) envRoles(id int64) (map[int64]map[string]core.Role, error) {
	q := `SELECT r.user_id, e.name, r.role FROM user_environment_roles r JOIN environments e ON e.id = r.environment_id`
	args := []any{}
	if id > 0 {
		q += ` WHERE r.user_id = ?`
		args = append(args, id)
	}
	rows, err := t.query(q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]map[string]core.Role{}
	for rows.Next() {
		var uid int64
		var env, role string
		if err := rows.Scan(&uid, &env, &role); err != nil {
			return nil, err
		}
		if out[uid] == nil {
			out[uid] = map[string]core.Role{}
		}
		out[uid][env] = core.Role(role)
	}
	return out, rows.Err()
}

func (t *tx) Users() ([]core.User, error) {
	roles, err := t.envRoles(0)
	if err != nil {
		return nil, err
	}
	rows, err := t.query(`SELECT ` + userColumns + ` FROM users ORDER BY email`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []core.User{}
	for rows.Next() {
		u, _, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		u.EnvironmentRoles = roles[u.ID]
		out = append(out, u)
	}
	return out, rows.Err()
}

func (t *tx) userWhere(where string, args ...any) (core.User, string, error) {
	u, hash, err := scanUser(t.row(`SELECT `+userColumns+` FROM users WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return u, "", core.Errorf(core.ENOTFOUND, "no such account")
	}
	if err != nil {
		return u, "", err
	}
	roles, err := t.envRoles(u.ID)
	u.EnvironmentRoles = roles[u.ID]
	return u, hash, err
}

func (t *tx) User(id int64) (core.User, string, error) { return t.userWhere(`id = ?`, id) }

func (t *tx) UserByEmail(email string) (core.User, string, error) {
	return t.userWhere(`email = ?`, email)
}

func (t *tx) InsertUser(u core.User, hash string) (core.User, error) {
	res, err := t.exec(`INSERT INTO users (email, password_hash, role, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (email) DO NOTHING`,
		u.Email, hash, string(u.Role), t.now())
	if err != nil {
		return core.User{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.User{}, core.Errorf(core.ECONFLICT, "an account with email %q already exists", u.Email)
	}
	u, _, err = t.UserByEmail(u.Email)
	return u, err
}

func (t *tx) UpdateUser(u core.User) (core.User, error) {
	var disabled any
	if u.DisabledAt != nil {
		disabled = micros(*u.DisabledAt)
	}
	res, err := t.exec(`UPDATE users SET email = ?, role = ?, disabled_at = ? WHERE id = ? AND NOT EXISTS (SELECT 1 FROM users o WHERE o.email = ? AND o.id <> ?)`,
		u.Email, string(u.Role), disabled, u.ID, u.Email, u.ID)
	if err != nil {
		return core.User{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.User{}, core.Errorf(core.ECONFLICT, "no account %d, or email %q is taken", u.ID, u.Email)
	}
	if u.DisabledAt != nil {
		if _, err := t.exec(`DELETE FROM sessions WHERE user_id = ?`, u.ID); err != nil {
			return core.User{}, err
		}
	}
	u, _, err = t.User(u.ID)
	return u, err
}

func (t *tx) SetPasswordHash(id int64, hash string) error {
	res, err := t.exec(`UPDATE users SET password_hash = ? WHERE id = ?`, hash, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return core.Errorf(core.ENOTFOUND, "no account %d", id)
	}
	// Password sessions begun with the old password end.
	_, err = t.exec(`DELETE FROM sessions WHERE user_id = ? AND token_id IS NULL`, id)
	return err
}

func (t *tx) SetEnvironmentRole(id int64, env string, role core.Role) error {
	envID, _, err := t.env(env)
	if err != nil {
		return err
	}
	if role == "" {
		_, err = t.exec(`DELETE FROM user_environment_roles WHERE user_id = ? AND environment_id = ?`, id, envID)
		return err
	}
	_, err = t.exec(`INSERT INTO user_environment_roles (user_id, environment_id, role) VALUES (?, ?, ?)
		ON CONFLICT (user_id, environment_id) DO UPDATE SET role = excluded.role`, id, envID, string(role))
	return err
}

// LiveAdmins counts enabled admin accounts; on PostgreSQL it locks them, so
// that two concurrent demotions cannot both see two admins.
func (t *tx) LiveAdmins() (int, error) {
	q := `SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL`
	if t.d.postgres {
		q += ` FOR UPDATE`
	}
	rows, err := t.query(q)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}

func (t *tx) FirstAdmin() (core.User, error) {
	u, _, err := t.userWhere(`id = (SELECT MIN(id) FROM users WHERE role = 'admin' AND disabled_at IS NULL)`)
	return u, err
}
