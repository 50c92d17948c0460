package core

import (
	"errors"
	"fmt"
	"strings"

	"github.com/allot-dev/allot/internal/eval"
)

// check asks the engine whether the flag, with settings s in one
// environment, can be published: it converts both exactly as publishing
// does (UFCFlag) and compiles the result with internal/eval. Every
// experiment is compiled as if it were running, so that a draft that
// passes can later be started. A refusal is an EINVALID error whose field
// names the domain field at fault.
//
// This is the one place the core calls the engine's judgement.
func check(f *Flag, s *FlagSettings) error {
	probe := *s
	probe.Allocations = make([]Allocation, len(s.Allocations))
	for i, a := range s.Allocations {
		if a.Type == Experiment {
			a.Status = Running
		}
		// Salts are drawn when the allocation is first stored.
		if a.TrafficSalt == "" {
			a.TrafficSalt = "probe"
		}
		if a.SplitSalt == "" {
			a.SplitSalt = "probe"
		}
		probe.Allocations[i] = a
	}
	w, err := UFCFlag(f, &probe)
	if err != nil {
		return Invalid("allocations", "%v", err)
	}
	err = eval.CheckFlag(f.Key, w)
	if err == nil {
		return nil
	}
	var pe *eval.PublishError
	if !errors.As(err, &pe) || len(pe.Problems) == 0 {
		return Invalid("flag", "%v", err)
	}
	// The first problem is the one a person fixes first; the message lists
	// them all when there are several.
	p := pe.Problems[0]
	msg := p.Reason
	if n := len(pe.Problems); n > 1 {
		msg = fmt.Sprintf("%s (and %d more: %v)", msg, n-1, err)
	}
	return Invalid(domainField(f, p.Path), "%s", msg)
}

// domainField turns the engine's JSON path of a problem in the published
// flag (flags.KEY.variations.VKEY.value, flags.KEY.allocations[i].rules[j]
// .conditions[k].value, flags.KEY.allocations[i].splits[j].variationKey)
// into the domain field a person edits. Allocation indexes are the
// domain's, because check publishes every allocation, one for one.
func domainField(f *Flag, path string) string {
	rest, ok := strings.CutPrefix(path, "flags."+f.Key)
	if !ok {
		return "flag"
	}
	rest = strings.TrimPrefix(rest, ".")
	switch {
	case rest == "":
		return "flag"
	case strings.HasPrefix(rest, "variations."):
		seg := strings.TrimPrefix(rest, "variations.")
		suffix := ".key"
		if v, ok := strings.CutSuffix(seg, ".value"); ok {
			seg, suffix = v, ".value"
		}
		// A duplicate is named at its second place.
		at := -1
		for i, v := range f.Variations {
			if v.Key == seg {
				at = i
			}
		}
		if at < 0 {
			return "variations"
		}
		return fmt.Sprintf("variations[%d]%s", at, suffix)
	case strings.HasPrefix(rest, "allocations["):
		if i := strings.Index(rest, ".splits["); i >= 0 {
			return rest[:i]
		}
		return rest
	}
	return rest
}
