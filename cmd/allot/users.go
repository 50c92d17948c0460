package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/allot-dev/allot/cmd/allot/internal/apiclient"
	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

func init() {
	register("users", "create, list, change and disable accounts (server API)", runUsers)
}

const usersUsage = `allot users <command> [flags]

  list [--json]                       list accounts and their roles
  me [--json]                         the account and token you act as
  create EMAIL [--role viewer] [--password-stdin]
                                      create an account (admins); without
                                      --password-stdin a random password is
                                      printed, once
  role EMAIL ROLE [--env ENV]         set the role (viewer, editor, admin);
                                      with --env, only in that environment
                                      (ROLE "default" removes the override)
  disable EMAIL | enable EMAIL        disable or enable an account
  passwd EMAIL [--password-stdin]     set a password (yours, or anyone's as
                                      an admin); without --password-stdin a
                                      random one is printed, once

EMAIL may also be the account's numeric id.`

func runUsers(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "users", usersUsage)
	role := a.fs.String("role", string(core.RoleViewer), "create: the account's role (viewer, editor, admin)")
	fromStdin := a.fs.Bool("password-stdin", false, "create, passwd: read the password from the first line of standard input")
	asJSON := a.fs.Bool("json", false, "list, me: print JSON for scripts")
	envSet := false
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	a.fs.Visit(func(f *flag.Flag) {
		if f.Name == "env" {
			envSet = true
		}
	})
	if len(pos) == 0 {
		return usageErr(a)
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	password := func() (string, bool, error) {
		if !*fromStdin {
			var b [12]byte
			rand.Read(b[:])
			return hex.EncodeToString(b[:]), true, nil
		}
		line, err := bufio.NewReader(io.LimitReader(e.stdin, 4*core.MaxPasswordLength+2)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", false, err
		}
		return strings.TrimRight(line, "\r\n"), false, nil
	}
	switch {
	case pos[0] == "list" && len(pos) == 1:
		users, err := c.Users(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, users)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tROLE\tPER ENVIRONMENT\tSTATE")
		for _, u := range users {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Role, envRoles(u), userState(u))
		}
		return tw.Flush()
	case pos[0] == "me" && len(pos) == 1:
		me, err := c.Me(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(e.stdout, me)
		}
		fmt.Fprintf(e.stdout, "%s, %s%s, with token %s (%s…, role %s)\n", me.User.Email, me.User.Role, withEnvRoles(me.User), me.Token.Name, me.Token.Prefix, me.Token.Role)
		return nil
	case pos[0] == "create" && len(pos) == 2:
		pw, generated, err := password()
		if err != nil {
			return err
		}
		u, err := c.CreateUser(ctx, pos[1], pw, core.Role(*role))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "created %s (%s), id %d\n", u.Email, u.Role, u.ID)
		if generated {
			fmt.Fprintf(e.stderr, "password (shown once; give it to them safely):\n")
			fmt.Fprintln(e.stdout, pw)
		}
		return nil
	case pos[0] == "role" && len(pos) == 3:
		id, err := userID(ctx, c, pos[1])
		if err != nil {
			return err
		}
		r, env := core.Role(pos[2]), ""
		if envSet {
			env = *a.env
			if r == "default" {
				r = ""
			}
		}
		u, err := c.SetUserRole(ctx, id, r, env)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s%s\n", u.Email, u.Role, withEnvRoles(u))
		return nil
	case (pos[0] == "disable" || pos[0] == "enable") && len(pos) == 2:
		id, err := userID(ctx, c, pos[1])
		if err != nil {
			return err
		}
		op := c.DisableUser
		if pos[0] == "enable" {
			op = c.EnableUser
		}
		u, err := op(ctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", u.Email, userState(u))
		return nil
	case pos[0] == "passwd" && len(pos) == 2:
		id, err := userID(ctx, c, pos[1])
		if err != nil {
			return err
		}
		pw, generated, err := password()
		if err != nil {
			return err
		}
		if err := c.SetPassword(ctx, id, pw); err != nil {
			return err
		}
		if generated {
			fmt.Fprintf(e.stderr, "new password (shown once):\n")
			fmt.Fprintln(e.stdout, pw)
		} else {
			fmt.Fprintln(e.stdout, "password set")
		}
		return nil
	}
	return usageErr(a)
}

// userID resolves an email (or a numeric id) to an account id.
func userID(ctx context.Context, c *apiclient.Client, who string) (int64, error) {
	if id, err := strconv.ParseInt(who, 10, 64); err == nil {
		return id, nil
	}
	email, err := core.NormalizeEmail(who)
	if err != nil {
		return 0, err
	}
	users, err := c.Users(ctx)
	if err != nil {
		return 0, err
	}
	for _, u := range users {
		if u.Email == email {
			return u.ID, nil
		}
	}
	return 0, fmt.Errorf("no account %s", email)
}

func userState(u core.User) string {
	if u.DisabledAt != nil {
		return "disabled"
	}
	return "active"
}

func envRoles(u core.User) string {
	if len(u.EnvironmentRoles) == 0 {
		return "-"
	}
	var parts []string
	for env, r := range u.EnvironmentRoles {
		parts = append(parts, env+"="+string(r))
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func withEnvRoles(u core.User) string {
	if len(u.EnvironmentRoles) == 0 {
		return ""
	}
	return " (" + envRoles(u) + ")"
}
