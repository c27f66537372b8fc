package fightserver

import (
	"math"
	"strconv"
	"testing"
)

func TestParseNumberMatchesParseFloat(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "1", "-1", "12.5", "0.1", "0.3", "123.456", "99.99", "1e3", "1E-3", "2.5e+10",
		"0.000001", "123456789012345", "1234567890123456", "0.1234567890123456789", "1e22", "1e23",
		"9007199254740993", "1e-22", "1e-23", "1e308", "1e309", "-1e309", "4.9e-324", "0e400", "0.000",
		"179769313486231570000000000000000000000", "3.14159265358979",
	} {
		want, werr := strconv.ParseFloat(s, 64)
		got, err := parseNumber([]byte(s))
		if (err == nil) != (werr == nil) || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("parseNumber(%q) = %v, %v; ParseFloat %v, %v", s, got, err, want, werr)
		}
	}
}

// FuzzParseNumber checks parseNumber against strconv.ParseFloat on every
// JSON number.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0", "-12.5", "1e22", "0.1", "123456789012345678", "1e-400", "5e-324"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := scanner{b: []byte(s)}
		if !sc.number() || sc.i != len(s) {
			return // not a JSON number
		}
		want, werr := strconv.ParseFloat(s, 64)
		got, err := parseNumber([]byte(s))
		if (err == nil) != (werr == nil) || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseNumber(%q) = %v, %v; ParseFloat %v, %v", s, got, err, want, werr)
		}
	})
}
