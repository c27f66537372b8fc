package matchmaking

import (
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
