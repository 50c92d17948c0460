package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
	"github.com/allot-dev/allot/cmd/allot/internal/httpx"
)

type keysData struct {
	Keys    []core.SDKKey
	Created *core.SDKKey // the key just created, with its secret
	Name    string
	Kind    string // the form's kind, kept when it is shown again
	Origins string // the form's origins, one per line
	BaseURL string
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if httpx.Secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (u *UI) renderKeys(w http.ResponseWriter, r *http.Request, p *page, d *keysData) error {
	keys, err := u.core.SDKKeys(r.Context())
	if err != nil {
		return err
	}
	// Newest first.
	for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
		keys[i], keys[j] = keys[j], keys[i]
	}
	d.Keys, d.BaseURL = keys, baseURL(r)
	p.Path = "/keys"
	p.Title, p.Nav, p.Data = "SDK keys", "keys", d
	u.render(w, r, "keys", p)
	return nil
}

func (u *UI) listKeys(w http.ResponseWriter, r *http.Request, p *page) error {
	return u.renderKeys(w, r, p, &keysData{})
}

func (u *UI) createKey(w http.ResponseWriter, r *http.Request, p *page) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	kind, origins := r.PostFormValue("kind"), r.PostFormValue("origins")
	var k core.SDKKey
	var err error
	if kind == core.KeyClient {
		k, err = u.core.CreateClientKey(r.Context(), p.Env, name, strings.Fields(origins))
	} else {
		k, err = u.core.CreateSDKKey(r.Context(), p.Env, name)
	}
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			return err
		}
		p.fail(err, labelled(map[string]string{"name": "Name", "origins": "Allowed origins"}))
		return u.renderKeys(w, r, p, &keysData{Name: name, Kind: kind, Origins: origins})
	}
	p.Flash = fmt.Sprintf("Created %s key %s for %s. Copy the secret now: it is shown only once.", k.Kind, k.Name, k.Environment)
	return u.renderKeys(w, r, p, &keysData{Created: &k})
}

func (u *UI) revokeKey(w http.ResponseWriter, r *http.Request, p *page) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return core.Errorf(core.ENOTFOUND, "no SDK key %q", r.PathValue("id"))
	}
	if err := u.core.RevokeSDKKey(r.Context(), id); err != nil {
		return err
	}
	u.done(w, r, "/keys"+envQuery(p.Env), "Revoked the SDK key: SDKs using it can no longer fetch the configuration.")
	return nil
}

// setKeyOrigins replaces a client key's allowed origins (core.SetKeyOrigins).
func (u *UI) setKeyOrigins(w http.ResponseWriter, r *http.Request, p *page) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return core.Errorf(core.ENOTFOUND, "no SDK key %q", r.PathValue("id"))
	}
	k, err := u.core.SetKeyOrigins(r.Context(), id, strings.Fields(r.PostFormValue("origins")))
	if err != nil {
		return err
	}
	msg := "any site"
	if len(k.Origins) > 0 {
		msg = strings.Join(k.Origins, ", ")
	}
	u.done(w, r, "/keys"+envQuery(p.Env), fmt.Sprintf("Client key %s may now be used from %s.", k.Name, msg))
	return nil
}
