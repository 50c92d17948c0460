package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/httpapi"
	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
)

func init() {
	register("bootstrap", "write the configuration-wire document of an environment or of a subject's precomputed assignments, for a server-rendered page", runBootstrap)
}

// configurationWire is the envelope Eppo's client SDKs bootstrap from
// (spec and fixtures: ../shared/testdata/configuration-wire/): the
// configuration, or a subject's precomputed assignments, as the JSON text
// the network would have answered.
type configurationWire struct {
	Version     int              `json:"version"`
	Config      *wireResponse    `json:"config,omitempty"`
	Precomputed *wirePrecomputed `json:"precomputed,omitempty"`
}

type wireResponse struct {
	Response  string `json:"response"`
	FetchedAt string `json:"fetchedAt"`
}

type wirePrecomputed struct {
	SubjectKey        string         `json:"subjectKey"`
	SubjectAttributes wireAttributes `json:"subjectAttributes"`
	FetchedAt         string         `json:"fetchedAt"`
	Response          string         `json:"response"`
}

type wireAttributes struct {
	CategoricalAttributes map[string]any `json:"categoricalAttributes"`
	NumericAttributes     map[string]any `json:"numericAttributes"`
}

func runBootstrap(ctx context.Context, e *env, args []string) error {
	a := newAdminFlags(e, "allot bootstrap",
		"allot bootstrap --env NAME [--subject KEY [--attributes JSON]] [--format client|server] [--config FILE] [--out FILE]")
	subject := a.fs.String("subject", "", "write this subject's precomputed assignments rather than the environment's configuration")
	attributes := a.fs.String("attributes", "", `the subject's attributes, a JSON object ({"country":"NL","age":30}); numbers are numeric attributes, the rest categorical`)
	format := a.fs.String("format", "client", "the configuration's format: client (obfuscated, for public pages) or server")
	configPath := a.fs.String("config", "", "work offline from this UFC configuration `file` (SERVER format) rather than the server")
	out := a.fs.String("out", "-", "output file (- for stdout)")
	pos, err := a.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErr(a)
	}
	if *format != "client" && *format != "server" {
		return &exitError{code: 2, err: errors.New("--format: client or server")}
	}
	if *subject == "" && *attributes != "" {
		return &exitError{code: 2, err: errors.New("--attributes needs --subject")}
	}
	var req httpapi.PrecomputedRequest
	if *subject != "" {
		req.SubjectKey = *subject
		if req.SubjectAttributes.NumericAttributes, req.SubjectAttributes.CategoricalAttributes, err = splitAttributes(*attributes); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--attributes: %w", err)}
		}
	}

	// The SERVER document: from the file, or as the server publishes it.
	var doc []byte
	if *configPath != "" {
		if doc, err = os.ReadFile(*configPath); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
	} else {
		c, err := a.client()
		if err != nil {
			return err
		}
		if doc, err = c.Config(ctx, *a.env); err != nil {
			return fmt.Errorf("reading environment %s: %w", *a.env, err)
		}
	}
	snap, err := eval.Load(doc)
	if err != nil {
		return fmt.Errorf("the configuration does not load: %w", err)
	}
	if snap.Obfuscated() {
		return errors.New("the configuration is in CLIENT format; bootstrap needs the SERVER document (its flag keys are hashed)")
	}
	now := time.Now()
	fetchedAt := now.UTC().Format("2006-01-02T15:04:05.000Z")
	wire := configurationWire{Version: 1}
	if *subject != "" {
		body, _ := json.Marshal(req)
		key, attrs, err := httpapi.ParsePrecomputedRequest(body) // the endpoint's limits and checks
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		env := snap.Environment
		if env == "" {
			env = *a.env
		}
		resp, err := json.Marshal(httpapi.PrecomputedDocument(snap, env, key, attrs, now))
		if err != nil {
			return err
		}
		wire.Precomputed = &wirePrecomputed{SubjectKey: key, FetchedAt: fetchedAt, Response: string(resp),
			SubjectAttributes: wireAttributes{CategoricalAttributes: nonNil(req.SubjectAttributes.CategoricalAttributes),
				NumericAttributes: nonNil(req.SubjectAttributes.NumericAttributes)}}
	} else {
		if *format == "client" {
			d, err := ufc.Parse(doc)
			if err != nil {
				return fmt.Errorf("the configuration does not parse: %w", err)
			}
			if doc, err = json.Marshal(ufc.Obfuscate(d)); err != nil {
				return err
			}
		} else {
			// Compact: the document is embedded in a page.
			var buf bytes.Buffer
			if err := json.Compact(&buf, doc); err != nil {
				return err
			}
			doc = buf.Bytes()
		}
		wire.Config = &wireResponse{Response: string(doc), FetchedAt: fetchedAt}
	}
	b, err := json.Marshal(wire)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if *out == "-" {
		_, err = e.stdout.Write(b)
		return err
	}
	return os.WriteFile(*out, b, 0o644)
}

// splitAttributes reads a flat JSON object of attributes and sorts them as
// Eppo's precomputed request does: numbers are numeric attributes,
// everything else categorical.
func splitAttributes(s string) (num, cat map[string]any, err error) {
	num, cat = map[string]any{}, map[string]any{}
	if s == "" {
		return num, cat, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, nil, fmt.Errorf("not a JSON object: %w", err)
	}
	for k, raw := range m {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, nil, err
		}
		if ufc.IsNumber(raw) {
			num[k] = json.Number(raw)
		} else {
			cat[k] = v
		}
	}
	return num, cat, nil
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
