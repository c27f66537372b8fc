// Package jsonnum reads JSON numbers for the servers' hand-written message
// scanners (the fight server's events, the map server's moves): Len checks
// the RFC 8259 grammar, Parse converts without strconv.ParseFloat's large
// stack frames in the common case.
package jsonnum

import (
	"math"
	"strconv"
)

// Len returns the length of the JSON number (RFC 8259 grammar) at the
// start of b, or 0 when b does not start with one.
func Len(b []byte) int {
	i := 0
	digits := func() int {
		j := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return 0
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0
		}
	}
	return i
}

// pow10 holds the powers of ten a float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// Parse converts a JSON number (already checked with Len) to a float64,
// exactly as strconv.ParseFloat does. Numbers of at
// most 15 significant digits with a small exponent, which is what game
// clients send, take Clinger's exact fast path: one correctly rounded
// multiplication or division of two exactly representable values. Others
// go to strconv.ParseFloat. The point is the servers' read goroutines'
// stacks: ParseFloat's slow-path buffers make its frames large enough that
// every connection's read goroutine would need a stack twice as big.
func Parse(b []byte) (float64, error) {
	i, neg := 0, false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	digits, exp := 0, 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if mant == 0 && b[i] == '0' {
			continue // leading zeros are not significant
		}
		mant = mant*10 + uint64(b[i]-'0')
		digits++
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if mant == 0 && b[i] == '0' {
				exp--
				continue
			}
			mant = mant*10 + uint64(b[i]-'0')
			digits++
			exp--
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		e := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 10000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if i != len(b) || digits > 15 || exp < -22 || exp > 22 {
		return parseSlow(b)
	}
	f := float64(mant) // exact: mant < 10^15 < 2^53
	if exp < 0 {
		f /= pow10[-exp]
	} else {
		f *= pow10[exp]
	}
	if math.IsInf(f, 0) {
		return parseSlow(b)
	}
	if neg {
		f = -f
	}
	return f, nil
}

//go:noinline
func parseSlow(b []byte) (float64, error) { return strconv.ParseFloat(string(b), 64) }
