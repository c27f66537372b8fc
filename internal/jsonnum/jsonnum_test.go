package jsonnum

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseMatchesParseFloat(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "1", "-1", "12.5", "0.1", "0.3", "123.456", "99.99", "1e3", "1E-3", "2.5e+10",
		"0.000001", "123456789012345", "1234567890123456", "0.1234567890123456789", "1e22", "1e23",
		"9007199254740993", "1e-22", "1e-23", "1e308", "1e309", "-1e309", "4.9e-324", "0e400", "0.000",
		"179769313486231570000000000000000000000", "3.14159265358979",
	} {
		want, werr := strconv.ParseFloat(s, 64)
		got, err := Parse([]byte(s))
		if (err == nil) != (werr == nil) || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("Parse(%q) = %v, %v; ParseFloat %v, %v", s, got, err, want, werr)
		}
	}
}

// FuzzParse checks Parse against strconv.ParseFloat on every
// JSON number.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"0", "-12.5", "1e22", "0.1", "123456789012345678", "1e-400", "5e-324"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Len([]byte(s)) != len(s) || len(s) == 0 {
			return // not a JSON number
		}
		want, werr := strconv.ParseFloat(s, 64)
		got, err := Parse([]byte(s))
		if (err == nil) != (werr == nil) || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("Parse(%q) = %v, %v; ParseFloat %v, %v", s, got, err, want, werr)
		}
	})
}

// FuzzLen checks Len against encoding/json's grammar: a whole input Len
// accepts is a valid JSON document, and a valid JSON document that starts
// like a number and has no spaces is all number.
func FuzzLen(f *testing.F) {
	for _, s := range []string{"0", "-0", "01", "1.", ".5", "1e", "1e+", "-", "1.5e-3", "12ab", "1E400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Len([]byte(s))
		if n > len(s) {
			t.Fatalf("Len(%q) = %d, past the end", s, n)
		}
		if n > 0 && !json.Valid([]byte(s[:n])) {
			t.Fatalf("Len(%q) = %d, but %q is not JSON", s, n, s[:n])
		}
		if len(s) > 0 && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && !strings.ContainsAny(s, " \t\r\n") && json.Valid([]byte(s)) && n != len(s) {
			t.Fatalf("Len(%q) = %d, want %d", s, n, len(s))
		}
	})
}
