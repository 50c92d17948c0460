package ufc

import (
	"errors"
	"fmt"
	"strconv"
)

// Parse decodes a UFC document. It rejects input that is not JSON or not a
// UFC document with a *SyntaxError naming the line, column and path. A flag
// whose members have the wrong JSON types is not fatal: it is set aside in
// Document.Invalid so that the other flags keep working. Unknown members are
// ignored.
func Parse(data []byte) (*Document, error) {
	r := &reader{data: data, intern: make(map[string]string, 64)}
	doc := &Document{}
	if c := r.peek(); c != '{' {
		return nil, r.errAt(r.pos, "not a UFC document: expected a JSON object, found %s", describe(c))
	}
	sawFlags := false
	err := r.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "createdAt":
			if r.null() {
				return nil
			}
			doc.CreatedAt, err = r.str()
		case "format":
			if r.null() {
				return nil
			}
			doc.Format, err = r.str()
		case "environment":
			if r.null() {
				return nil
			}
			err = r.object(func(k []byte) error {
				if string(k) == "name" && !r.null() {
					var e error
					doc.Environment.Name, e = r.str()
					return e
				}
				return r.skip()
			})
		case "flags":
			sawFlags = true
			err = r.parseFlags(doc)
		default:
			err = r.skip()
		}
		return pathErr(err, string(key))
	})
	if err != nil {
		return nil, err
	}
	if r.peek() != 0 {
		return nil, r.errAt(r.pos, "unexpected data after the document")
	}
	if !sawFlags {
		return nil, r.errAt(0, `not a UFC document: no "flags" member`)
	}
	switch doc.Format {
	case "", FormatServer, FormatClient:
	default:
		return nil, r.errAt(0, "unsupported format %q (want SERVER or CLIENT)", doc.Format)
	}
	return doc, nil
}

// pathErr prefixes the path of a *SyntaxError with seg.
func pathErr(err error, seg string) error {
	var se *SyntaxError
	if err == nil || !errors.As(err, &se) {
		return err
	}
	if se.Path == "" {
		se.Path = seg
	} else if se.Path[0] == '[' {
		se.Path = seg + se.Path
	} else {
		se.Path = seg + "." + se.Path
	}
	return err
}

func idx(i int) string { return "[" + strconv.Itoa(i) + "]" }

func (r *reader) parseFlags(doc *Document) error {
	if r.peek() != '{' {
		return r.errAt(r.pos, `"flags" must be an object, found %s`, describe(r.peek()))
	}
	doc.Flags = make(map[string]*Flag, 16)
	return r.object(func(k []byte) error {
		key := string(k)
		start := r.pos
		f, err := r.parseFlag()
		if err == nil {
			doc.Flags[key] = f
			return nil
		}
		// Rewind and check the flag's syntax alone: if it is well-formed JSON,
		// only its shape was wrong and the flag is isolated, not the document.
		r.pos = start
		if serr := r.skip(); serr != nil {
			return pathErr(serr, strconv.Quote(key))
		}
		if doc.Invalid == nil {
			doc.Invalid = make(map[string]error)
		}
		doc.Invalid[key] = pathErr(err, "flags."+strconv.Quote(key))
		return nil
	})
}

func (r *reader) parseFlag() (*Flag, error) {
	f := &Flag{}
	err := r.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "key":
			f.Key, err = r.str()
		case "enabled":
			f.Enabled, err = r.boolean()
		case "variationType":
			var s string
			s, err = r.str()
			f.VariationType = VariationType(s)
		case "totalShards":
			var b []byte
			if b, err = r.numberBytes(); err == nil {
				n, perr := strconv.Atoi(string(b))
				if perr != nil {
					return r.errAt(r.pos-len(b), "totalShards must be an integer, found %s", b)
				}
				f.TotalShards = n
			}
		case "variations":
			f.Variations = make(map[string]Variation, 4)
			err = r.object(func(vk []byte) error {
				key := r.internBytes(vk)
				var v Variation
				err := r.object(func(m []byte) error {
					switch string(m) {
					case "key":
						var e error
						v.Key, e = r.str()
						return e
					case "value":
						b, e := r.raw()
						v.Value = b
						return e
					}
					return r.skip()
				})
				f.Variations[key] = v
				return pathErr(err, strconv.Quote(key))
			})
		case "allocations":
			err = r.array(func(i int) error {
				a, err := r.parseAllocation()
				f.Allocations = append(f.Allocations, a)
				return pathErr(err, idx(i))
			})
		default:
			err = r.skip()
		}
		return pathErr(err, string(k))
	})
	return f, err
}

func (r *reader) parseAllocation() (Allocation, error) {
	a := Allocation{DoLog: true} // absent doLog logs: see spec 1.4 and compile.go
	err := r.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "key":
			a.Key, err = r.str()
		case "startAt":
			if !r.null() {
				a.StartAt, err = r.str()
			}
		case "endAt":
			if !r.null() {
				a.EndAt, err = r.str()
			}
		case "doLog":
			if !r.null() {
				a.DoLog, err = r.boolean()
			}
		case "rules":
			if r.null() {
				return nil
			}
			err = r.array(func(i int) error {
				var rule Rule
				err := r.object(func(m []byte) error {
					if string(m) != "conditions" {
						return r.skip()
					}
					return r.array(func(j int) error {
						c, err := r.parseCondition()
						rule.Conditions = append(rule.Conditions, c)
						return pathErr(err, "conditions"+idx(j))
					})
				})
				a.Rules = append(a.Rules, rule)
				return pathErr(err, idx(i))
			})
		case "splits":
			err = r.array(func(i int) error {
				s, err := r.parseSplit()
				a.Splits = append(a.Splits, s)
				return pathErr(err, idx(i))
			})
		default:
			err = r.skip()
		}
		return pathErr(err, string(k))
	})
	return a, err
}

func (r *reader) parseCondition() (Condition, error) {
	var c Condition
	err := r.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "attribute":
			c.Attribute, err = r.str()
		case "operator":
			c.Operator, err = r.str()
		case "value":
			c.Value, err = r.raw()
		default:
			err = r.skip()
		}
		return pathErr(err, string(k))
	})
	return c, err
}

func (r *reader) parseSplit() (Split, error) {
	var s Split
	err := r.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "variationKey":
			s.VariationKey, err = r.str()
		case "shards":
			s.Shards = []Shard{}
			err = r.array(func(i int) error {
				sh, err := r.parseShard()
				s.Shards = append(s.Shards, sh)
				return pathErr(err, idx(i))
			})
		case "extraLogging":
			if r.null() {
				return nil
			}
			s.ExtraLogging = make(map[string]string, 2)
			err = r.object(func(m []byte) error {
				key := r.internBytes(m)
				v, err := r.str()
				s.ExtraLogging[key] = v
				return pathErr(err, strconv.Quote(key))
			})
		default:
			err = r.skip()
		}
		return pathErr(err, string(k))
	})
	return s, err
}

func (r *reader) parseShard() (Shard, error) {
	var sh Shard
	err := r.object(func(k []byte) error {
		var err error
		switch string(k) {
		case "salt":
			sh.Salt, err = r.str()
		case "ranges":
			err = r.array(func(i int) error {
				var rg Range
				err := r.object(func(m []byte) error {
					switch string(m) {
					case "start":
						n, err := r.integer()
						rg.Start = n
						return err
					case "end":
						n, err := r.integer()
						rg.End = n
						return err
					}
					return r.skip()
				})
				sh.Ranges = append(sh.Ranges, rg)
				return pathErr(err, idx(i))
			})
		default:
			err = r.skip()
		}
		return pathErr(err, string(k))
	})
	return sh, err
}

func (r *reader) integer() (int, error) {
	b, err := r.numberBytes()
	if err != nil {
		return 0, err
	}
	n, perr := strconv.Atoi(string(b))
	if perr != nil {
		return 0, r.errAt(r.pos-len(b), "expected an integer, found %s", b)
	}
	return n, nil
}

// String returns a short description of d, for logs.
func (d *Document) String() string {
	return fmt.Sprintf("UFC %s document for %q, %d flags, created %s", d.Format, d.Environment.Name, len(d.Flags)+len(d.Invalid), d.CreatedAt)
}

// DecodeString returns the string that raw encodes, if raw is a JSON string.
func DecodeString(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	r := reader{data: raw}
	b, err := r.strBytes()
	if err != nil || r.peek() != 0 {
		return "", false
	}
	return string(b), true
}

// DecodeStrings returns the strings of raw, if raw is a JSON array of strings.
func DecodeStrings(raw []byte) ([]string, bool) {
	var list []string
	r := reader{data: raw}
	err := r.array(func(int) error {
		b, err := r.strBytes()
		if err != nil {
			return err
		}
		list = append(list, string(b))
		return nil
	})
	return list, err == nil && r.peek() == 0
}

// Valid reports whether b is exactly one well-formed JSON value.
func Valid(b []byte) bool {
	r := reader{data: b}
	return r.skip() == nil && r.peek() == 0
}

// IsNumber reports whether raw is a JSON number (raw must be well-formed).
func IsNumber(raw []byte) bool {
	if len(raw) == 0 {
		return false
	}
	c := raw[0]
	return c == '-' || (c >= '0' && c <= '9')
}
