package allot

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The HTTP logger writes events as JSON lines by hand: encoding/json's
// reflection, its map key sorting and time formatting cost several
// allocations an event. The output is byte for byte what json.Marshal
// gives for an AssignmentEvent (a test compares them), so the wire format
// does not change.

// eventEncoder appends events as JSON; its scratch space is reused.
type eventEncoder struct {
	kv   []attrKV
	keys []string
}

// appendRecord appends the event of a record of b and a new line.
func (enc *eventEncoder) appendRecord(dst []byte, b *batch, r *record) ([]byte, error) {
	dst = append(dst, `{"eventId":"`...)
	dst = appendEventID(dst)
	dst = append(dst, `","featureFlag":`...)
	dst = appendJSONString(dst, r.flag)
	dst = append(dst, `,"allocation":`...)
	dst = appendJSONString(dst, r.alloc.Key)
	dst = append(dst, `,"experiment":`...)
	dst = appendJSONString2(dst, r.flag, "-", r.alloc.Key)
	dst = append(dst, `,"variation":`...)
	dst = appendJSONString(dst, r.split.VariationKey)
	dst = append(dst, `,"subject":`...)
	dst = appendJSONString(dst, r.subject)
	var err error
	if kv := b.attributes(r); len(kv) > 0 {
		dst = append(dst, `,"subjectAttributes":`...)
		if dst, err = enc.appendAttrs(dst, kv); err != nil {
			return dst, err
		}
	}
	if dst, err = appendTimestamp(dst, r.at); err != nil {
		return dst, err
	}
	if len(r.split.ExtraLogging) > 0 {
		dst = append(dst, `,"extraLogging":`...)
		dst = enc.appendStringMap(dst, r.split.ExtraLogging)
	}
	dst = append(dst, `,"metaData":{"sdkLanguage":"go","sdkName":`...)
	dst = appendJSONString(dst, SDKName)
	dst = append(dst, `,"sdkVersion":`...)
	dst = appendJSONString(dst, Version)
	return append(dst, "}}\n"...), nil
}

// appendEvent appends e and a new line.
func (enc *eventEncoder) appendEvent(dst []byte, e *AssignmentEvent) ([]byte, error) {
	dst = append(dst, `{"eventId":`...)
	dst = appendJSONString(dst, e.EventID)
	dst = append(dst, `,"featureFlag":`...)
	dst = appendJSONString(dst, e.FeatureFlag)
	dst = append(dst, `,"allocation":`...)
	dst = appendJSONString(dst, e.Allocation)
	dst = append(dst, `,"experiment":`...)
	dst = appendJSONString(dst, e.Experiment)
	dst = append(dst, `,"variation":`...)
	dst = appendJSONString(dst, e.Variation)
	dst = append(dst, `,"subject":`...)
	dst = appendJSONString(dst, e.Subject)
	var err error
	if len(e.SubjectAttributes) > 0 {
		dst = append(dst, `,"subjectAttributes":`...)
		enc.kv = enc.kv[:0]
		for k, v := range e.SubjectAttributes {
			enc.kv = append(enc.kv, attrKV{k, v})
		}
		dst, err = enc.appendAttrs(dst, enc.kv)
		clear(enc.kv)
		if err != nil {
			return dst, err
		}
	}
	if dst, err = appendTimestamp(dst, e.Timestamp); err != nil {
		return dst, err
	}
	if len(e.ExtraLogging) > 0 {
		dst = append(dst, `,"extraLogging":`...)
		dst = enc.appendStringMap(dst, e.ExtraLogging)
	}
	dst = append(dst, `,"metaData":`...)
	if e.MetaData == nil {
		dst = append(dst, "null"...)
	} else {
		dst = enc.appendStringMap(dst, e.MetaData)
	}
	return append(dst, "}\n"...), nil
}

// appendTimestamp appends the timestamp field as time.Time's MarshalJSON
// would (in UTC, as the events carry it).
func appendTimestamp(dst []byte, t time.Time) ([]byte, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return dst, &json.UnsupportedValueError{Str: "timestamp year outside [0,9999]"}
	}
	dst = append(dst, `,"timestamp":"`...)
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"'), nil
}

// appendAttrs appends attributes as a JSON object with sorted keys,
// sorting kv in place.
func (enc *eventEncoder) appendAttrs(dst []byte, kv []attrKV) ([]byte, error) {
	if len(kv) > 1 {
		slices.SortFunc(kv, func(a, b attrKV) int { return strings.Compare(a.key, b.key) })
	}
	dst = append(dst, '{')
	for i, a := range kv {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, a.key)
		dst = append(dst, ':')
		var err error
		if dst, err = appendJSONValue(dst, a.value); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func (enc *eventEncoder) appendStringMap(dst []byte, m map[string]string) []byte {
	enc.keys = enc.keys[:0]
	for k := range m {
		enc.keys = append(enc.keys, k)
	}
	slices.Sort(enc.keys)
	dst = append(dst, '{')
	for i, k := range enc.keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[k])
	}
	clear(enc.keys)
	return append(dst, '}')
}

// appendJSONValue appends an attribute value; the common types by hand,
// others through encoding/json.
func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendJSONString(dst, x), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case float64:
		return appendJSONFloat(dst, x)
	case int:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(dst, x, 10), nil
	case int32:
		return strconv.AppendInt(dst, int64(x), 10), nil
	case uint64:
		return strconv.AppendUint(dst, x, 10), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendJSONFloat formats f as encoding/json does.
func appendJSONFloat(dst []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, &json.UnsupportedValueError{Str: strconv.FormatFloat(f, 'g', -1, 64)}
	}
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, nil
}

// appendJSONString2 appends the concatenation of a, sep and b as one JSON
// string, without building it.
func appendJSONString2(dst []byte, a, sep, b string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, a)
	dst = appendEscaped(dst, sep)
	dst = appendEscaped(dst, b)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string with encoding/json's
// escaping (HTML characters, U+2028 and U+2029 escaped, invalid UTF-8
// replaced by U+FFFD).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendEscaped(dst, s)
	return append(dst, '"')
}

// appendEscaped appends the inside of s's JSON string.
func appendEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}
