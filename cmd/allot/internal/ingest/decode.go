package ingest

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// decodeEvent decodes one event into e. Events as SDKs send them (an
// object of plain strings, attributes an object, metaData an object of
// strings) are read in one pass without reflection: encoding/json cost
// most of the handler's CPU, which competes with the database for the same
// cores. Anything else (escapes, nulls, numbers where strings belong, keys
// in another case, repeated keys, malformed JSON) goes to json.Unmarshal,
// so the result is always what json.Unmarshal gives (a fuzz test checks).
func decodeEvent(raw []byte, e *wireEvent) error {
	if fastDecode(raw, e) {
		return nil
	}
	*e = wireEvent{}
	return json.Unmarshal(raw, e)
}

// fastDecode decodes the common shape of an event, or reports false
// (leaving e partly filled) for anything it does not handle.
func fastDecode(b []byte, e *wireEvent) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return skipSpace(b, i+1) == len(b)
	}
	var seen uint16
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return false
		}
		if i = skipSpace(b, j); i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		bit := uint16(0)
		switch key {
		case "eventId", "featureFlag", "allocation", "experiment", "variation", "subject":
			v, j, ok := plainString(b, i)
			if !ok {
				return false
			}
			switch key {
			case "eventId":
				e.EventID, bit = v, 1<<0
			case "featureFlag":
				e.FeatureFlag, bit = v, 1<<1
			case "allocation":
				e.Allocation, bit = v, 1<<2
			case "experiment":
				e.Experiment, bit = v, 1<<3
			case "variation":
				e.Variation, bit = v, 1<<4
			default:
				e.Subject, bit = v, 1<<5
			}
			i = j
		case "timestamp":
			_, j, ok := plainString(b, i)
			// time.Time's own decoder, as json.Unmarshal calls it.
			if !ok || e.Timestamp.UnmarshalJSON(b[i:j]) != nil {
				return false
			}
			bit, i = 1<<6, j
		case "subjectAttributes":
			if i >= len(b) || b[i] != '{' {
				return false
			}
			j, err := valueEnd(b, i)
			if err != nil || !json.Valid(b[i:j]) {
				return false
			}
			e.SubjectAttributes, bit, i = b[i:j], 1<<7, j
		case "metaData":
			j, ok := fastMetaData(b, i, e)
			if !ok {
				return false
			}
			bit, i = 1<<8, j
		case "holdoutKey", "holdoutVariation": // extraLogging spread (Eppo's JavaScript SDKs)
			v, j, ok := plainString(b, i)
			if !ok {
				return false
			}
			if key == "holdoutKey" {
				e.HoldoutKey, bit = looseString(v), 1<<9
			} else {
				e.HoldoutVariation, bit = looseString(v), 1<<10
			}
			i = j
		case "extraLogging":
			j, ok := fastExtraLogging(b, i, e)
			if !ok {
				return false
			}
			bit, i = 1<<11, j
		default:
			// json matches keys case-insensitively: leave such keys to it.
			for _, k := range knownKeys {
				if strings.EqualFold(key, k) && key != "extraLogging" {
					return false
				}
			}
			j, err := valueEnd(b, i)
			if err != nil || !json.Valid(b[i:j]) {
				return false
			}
			i = j
		}
		if seen&bit != 0 {
			return false // a repeated key: json keeps the last; leave it to json
		}
		seen |= bit
		if i = skipSpace(b, i); i >= len(b) {
			return false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return skipSpace(b, i+1) == len(b)
		default:
			return false
		}
	}
}

var knownKeys = []string{"eventId", "featureFlag", "allocation", "experiment", "variation", "subject",
	"timestamp", "subjectAttributes", "metaData", "extraLogging", "holdoutKey", "holdoutVariation"}

// fastExtraLogging reads an extraLogging object at b[i] whose keys are
// plain strings, keeping the holdout's keys (plain strings too) and
// skipping any other value, as holdoutFields.UnmarshalJSON does.
func fastExtraLogging(b []byte, i int, e *wireEvent) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	e.ExtraLogging = holdoutFields{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	var seen uint8
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return 0, false
		}
		if i = skipSpace(b, j); i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		var bit uint8
		switch key {
		case "holdoutKey", "holdoutVariation":
			v, j, ok := plainString(b, i)
			if !ok {
				return 0, false
			}
			if key == "holdoutKey" {
				e.ExtraLogging.Key, bit = v, 1
			} else {
				e.ExtraLogging.Variation, bit = v, 2
			}
			i = j
		default:
			j, err := valueEnd(b, i)
			if err != nil || !json.Valid(b[i:j]) {
				return 0, false
			}
			i = j
		}
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		if i = skipSpace(b, i); i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// fastMetaData reads a metaData object of plain strings at b[i].
func fastMetaData(b []byte, i int, e *wireEvent) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	var seen uint8
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return 0, false
		}
		if i = skipSpace(b, j); i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipSpace(b, i+1)
		v, j, ok := plainString(b, i)
		if !ok {
			return 0, false
		}
		i = j
		var bit uint8
		switch key {
		case "sdkName":
			e.MetaData.SDKName, bit = v, 1
		case "sdkLanguage":
			e.MetaData.SDKLanguage, bit = v, 2
		case "sdkVersion":
			e.MetaData.SDKVersion, bit = v, 4
		default:
			if strings.EqualFold(key, "sdkName") || strings.EqualFold(key, "sdkLanguage") || strings.EqualFold(key, "sdkVersion") {
				return 0, false
			}
		}
		if seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		if i = skipSpace(b, i); i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// plainString reads a JSON string at b[i] that json would decode to its
// bytes unchanged: no escapes, no control characters, valid UTF-8. It
// returns the string, which shares b's memory (b must not change after),
// and the index after its closing quote.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	n := bytes.IndexByte(b[i+1:], '"')
	if n < 0 {
		return "", 0, false
	}
	s := b[i+1 : i+1+n]
	ascii := true
	for _, c := range s {
		if c < 0x20 || c == '\\' {
			return "", 0, false
		}
		if c >= utf8.RuneSelf {
			ascii = false
		}
	}
	if !ascii && !utf8.Valid(s) {
		return "", 0, false
	}
	if n == 0 {
		return "", i + 2, true
	}
	// No copy: the body is never written once read (see readBody), and the
	// string keeps it alive as long as a row needs it.
	return unsafe.String(&s[0], n), i + 2 + n, true
}
