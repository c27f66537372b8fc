package matchmaking

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"unicode/utf8"
)

// ErrBadSearchFields: search fields over the limits, with a bad name, or
// a double that is NaN or infinite.
var ErrBadSearchFields = errors.New("bad search fields")

// Limits of a ticket's search fields.
const (
	// MaxSearchFields bounds each kind: doubles, strings and tags.
	MaxSearchFields = 16
	// MaxFieldName bounds a field name or tag, in bytes.
	MaxFieldName = 64
	// MaxStringValue bounds a string field's value, in bytes.
	MaxStringValue = 256
)

const fieldNameRule = "1 to 64 bytes of [A-Za-z0-9_.-]"

func validFieldName(s string) bool {
	if len(s) == 0 || len(s) > MaxFieldName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// SearchFields are a ticket's properties pools filter on, as in Open
// Match: numbers, strings and tags by name.
type SearchFields struct {
	Doubles map[string]float64 `json:"doubles,omitempty"`
	Strings map[string]string  `json:"strings,omitempty"`
	Tags    []string           `json:"tags,omitempty"`
}

// Validate checks the limits: at most MaxSearchFields of each kind, names
// of fieldNameRule, string values of at most MaxStringValue bytes of valid
// UTF-8, finite doubles, no tag twice. Errors wrap ErrBadSearchFields.
func (s *SearchFields) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("search fields: %w: %s", ErrBadSearchFields, fmt.Sprintf(format, a...))
	}
	if len(s.Doubles) > MaxSearchFields || len(s.Strings) > MaxSearchFields || len(s.Tags) > MaxSearchFields {
		return bad("at most %d doubles, %d strings and %d tags", MaxSearchFields, MaxSearchFields, MaxSearchFields)
	}
	for k, v := range s.Doubles {
		if !validFieldName(k) {
			return bad("double name %q: %s", k, fieldNameRule)
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return bad("double %q is not a finite number", k)
		}
	}
	for k, v := range s.Strings {
		if !validFieldName(k) {
			return bad("string name %q: %s", k, fieldNameRule)
		}
		if len(v) > MaxStringValue || !utf8.ValidString(v) {
			return bad("string %q: up to %d bytes of UTF-8", k, MaxStringValue)
		}
	}
	for i, t := range s.Tags {
		if !validFieldName(t) {
			return bad("tag %q: %s", t, fieldNameRule)
		}
		if slices.Contains(s.Tags[:i], t) {
			return bad("tag %q twice", t)
		}
	}
	return nil
}

// Allowed reports the first field of s a player may not set under names
// ("" when every field is allowed).
func (s *SearchFields) Allowed(names FieldNames) string {
	for k := range s.Doubles {
		if !slices.Contains(names.Doubles, k) {
			return "doubles." + k
		}
	}
	for k := range s.Strings {
		if !slices.Contains(names.Strings, k) {
			return "strings." + k
		}
	}
	for _, t := range s.Tags {
		if !slices.Contains(names.Tags, t) {
			return "tags." + t
		}
	}
	return ""
}

// empty reports whether s has no field.
func (s *SearchFields) empty() bool {
	return len(s.Doubles) == 0 && len(s.Strings) == 0 && len(s.Tags) == 0
}

// maxInterned bounds the search field sets an interner remembers: past
// it, it forgets them all and starts again (a set it forgot stays valid;
// tickets queued after equal ones just get another copy).
const maxInterned = 4096

// interner gives tickets with equal search fields one *SearchFields, so
// that a match function's request carries each distinct set once (see
// matchfn's protocol) and a million tickets with a handful of distinct
// fields do not each point at their own. It belongs to the matchmaker's
// goroutine. The sets it hands out must not be modified.
type interner struct {
	sets map[string]*SearchFields
	key  []byte
}

// intern is the set equal to s it handed out before, or s from now on.
// Equal: the same doubles (bit for bit) and strings, and the same tags in
// the same order. An empty s is returned as is.
func (in *interner) intern(s *SearchFields) *SearchFields {
	if s.empty() {
		return s
	}
	in.key = s.appendKey(in.key[:0])
	if f, ok := in.sets[string(in.key)]; ok {
		return f
	}
	if in.sets == nil || len(in.sets) >= maxInterned {
		in.sets = make(map[string]*SearchFields)
	}
	in.sets[string(in.key)] = s
	return s
}

// appendKey appends s in one canonical form: doubles then strings sorted
// by name, then the tags in order, each length-prefixed.
func (s *SearchFields) appendKey(b []byte) []byte {
	str := func(b []byte, v string) []byte {
		return append(binary.AppendUvarint(b, uint64(len(v))), v...)
	}
	var buf [MaxSearchFields]string // (no allocation within the limits)
	b = binary.AppendUvarint(b, uint64(len(s.Doubles)))
	for _, k := range sortedKeys(buf[:0], s.Doubles) {
		b = binary.LittleEndian.AppendUint64(str(b, k), math.Float64bits(s.Doubles[k]))
	}
	b = binary.AppendUvarint(b, uint64(len(s.Strings)))
	for _, k := range sortedKeys(buf[:0], s.Strings) {
		b = str(str(b, k), s.Strings[k])
	}
	b = binary.AppendUvarint(b, uint64(len(s.Tags)))
	for _, t := range s.Tags {
		b = str(b, t)
	}
	return b
}

// sortedKeys appends m's keys to buf, sorted.
func sortedKeys[V any](buf []string, m map[string]V) []string {
	for k := range m {
		buf = append(buf, k)
	}
	slices.Sort(buf)
	return buf
}
