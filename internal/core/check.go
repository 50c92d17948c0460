package core

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/allot-dev/allot/internal/eval"
	"github.com/allot-dev/allot/internal/ufc"
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
	snap, err := eval.Compile(&ufc.Document{Format: ufc.FormatServer, Flags: map[string]*ufc.Flag{f.Key: w}, BanditReferences: map[string]json.RawMessage{}})
	if err != nil {
		return Invalid("flag", "%v", err)
	}
	cf := snap.Flag(f.Key)
	if cf == nil {
		return Errorf(EINTERNAL, "the engine lost flag %q", f.Key)
	}
	for i := range cf.Variations {
		if err := cf.Variations[i].Err; err != nil {
			return Invalid(fmt.Sprintf("variations[%d].value", i), "%v", err)
		}
	}
	if cf.Err != nil {
		if m := reEngineTwice.FindStringSubmatch(cf.Err.Error()); m != nil {
			// Name the second of the two.
			seen := false
			for i, v := range f.Variations {
				if v.Key == m[1] && seen {
					return Invalid(fmt.Sprintf("variations[%d].key", i), "%s", stripFlagPrefix(cf.Err.Error()))
				}
				seen = seen || v.Key == m[1]
			}
		}
		return engineError(cf.Err)
	}
	for i := range cf.Allocations {
		for j, sp := range cf.Allocations[i].Splits {
			if sp.Variation == nil {
				return Invalid(fmt.Sprintf("allocations[%d]", i), "split %d names no variation of the flag: %q", j, sp.VariationKey)
			}
		}
	}
	return nil
}

var (
	reEngineAlloc = regexp.MustCompile(`allocations\[(\d+)\]: (.*)$`)
	reEngineCond  = regexp.MustCompile(`^rules\[(\d+)\]\.conditions\[(\d+)\]: (.*)$`)
	reEngineTwice = regexp.MustCompile(`variation "(.*)" appears twice`)
)

// engineError turns a flag error of the engine into a field error. The
// allocation index is the domain's, because check publishes every
// allocation.
func engineError(err error) error {
	msg := err.Error()
	m := reEngineAlloc.FindStringSubmatch(msg)
	if m == nil {
		if strings.Contains(msg, "variation") {
			return Invalid("variations", "%s", stripFlagPrefix(msg))
		}
		return Invalid("flag", "%s", stripFlagPrefix(msg))
	}
	field, rest := "allocations["+m[1]+"]", m[2]
	if c := reEngineCond.FindStringSubmatch(rest); c != nil {
		field += ".rules[" + c[1] + "].conditions[" + c[2] + "]"
		if strings.Contains(c[3], "operator") {
			return Invalid(field+".operator", "%s", c[3])
		}
		return Invalid(field+".value", "%s", c[3])
	}
	for _, name := range []string{"startAt", "endAt"} {
		if after, ok := strings.CutPrefix(rest, name+": "); ok {
			return Invalid(field+"."+name, "%s", after)
		}
	}
	return Invalid(field, "%s", rest)
}

func stripFlagPrefix(msg string) string {
	if strings.HasPrefix(msg, "flag ") {
		if _, after, ok := strings.Cut(msg, ": "); ok {
			return after
		}
	}
	return msg
}
