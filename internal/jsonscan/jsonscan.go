// Package jsonscan is a single-pass scanner for one JSON object, for the
// hot paths of arena's WebSocket servers: the game SDK reads a message's
// "type" with it, and the fight game its flat event fields. It accepts
// exactly RFC 8259 JSON (valid UTF-8, no trailing data), allocates nothing
// for strings without escapes, and bounds the nesting of skipped values.
package jsonscan

import (
	"unicode/utf16"
	"unicode/utf8"

	"github.com/arena-game/arena/internal/jsonnum"
)

// MaxDepth bounds the nesting of values Skip accepts.
const MaxDepth = 64

// Scanner is a position in a JSON document. Object hands one to its field
// function positioned at a value, which the function must consume.
type Scanner struct {
	b []byte
	i int
}

// Object scans data, which must be exactly one JSON object, calling field
// for every key in document order with s positioned at the key's value;
// field must consume the value (Str, Number, Lit or Skip) and report
// whether it was well formed. key aliases data unless it had escapes.
// Object reports false when data is not one well-formed JSON object.
func Object(data []byte, field func(key []byte, s *Scanner) bool) bool {
	if !utf8.Valid(data) {
		return false
	}
	s := Scanner{b: data}
	s.WS()
	if s.Peek() != '{' {
		return false
	}
	s.i++
	s.WS()
	if s.Peek() == '}' {
		s.i++
		s.WS()
		return s.i == len(s.b)
	}
	for {
		s.WS()
		if s.Peek() != '"' {
			return false
		}
		key, ok := s.Str()
		if !ok {
			return false
		}
		s.WS()
		if s.Peek() != ':' {
			return false
		}
		s.i++
		s.WS()
		if !field(key, &s) {
			return false
		}
		s.WS()
		switch s.Peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.WS()
			return s.i == len(s.b)
		default:
			return false
		}
	}
}

// WS skips whitespace.
func (s *Scanner) WS() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Peek returns the byte at the position, or 0 at the end.
func (s *Scanner) Peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// Lit consumes word (true, false, null) if it is next.
func (s *Scanner) Lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// Skip consumes any JSON value nested at most MaxDepth-depth deep.
func (s *Scanner) Skip(depth int) bool {
	switch c := s.Peek(); {
	case c == '"':
		_, ok := s.Str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		_, ok := s.Number()
		return ok
	case c == 't':
		return s.Lit("true")
	case c == 'f':
		return s.Lit("false")
	case c == 'n':
		return s.Lit("null")
	case c == '[' || c == '{':
		if depth >= MaxDepth {
			return false
		}
		s.i++
		s.WS()
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		if s.Peek() == end {
			s.i++
			return true
		}
		for {
			s.WS()
			if c == '{' {
				if s.Peek() != '"' {
					return false
				}
				if _, ok := s.Str(); !ok {
					return false
				}
				s.WS()
				if s.Peek() != ':' {
					return false
				}
				s.i++
				s.WS()
			}
			if !s.Skip(depth + 1) {
				return false
			}
			s.WS()
			switch s.Peek() {
			case ',':
				s.i++
			case end:
				s.i++
				return true
			default:
				return false
			}
		}
	}
	return false
}

// Number consumes a JSON number and returns its text.
func (s *Scanner) Number() ([]byte, bool) {
	start := s.i
	n := jsonnum.Len(s.b[s.i:])
	s.i += n
	return s.b[start:s.i], n > 0
}

// Str consumes a JSON string and returns its value. Without escapes the
// value aliases the input; with escapes it is a new, decoded slice (lone
// surrogates become U+FFFD, as encoding/json does).
func (s *Scanner) Str() ([]byte, bool) {
	b := s.b
	if s.Peek() != '"' {
		return nil, false
	}
	i := s.i + 1
	start := i
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return b[start:i], true
		case c == '\\':
			return s.strSlow(start)
		case c < 0x20:
			return nil, false
		}
		i++
	}
	return nil, false
}

func (s *Scanner) strSlow(start int) ([]byte, bool) {
	b := s.b
	out := make([]byte, 0, len(b)-start)
	i := start
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return out, true
		case c < 0x20:
			return nil, false
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		i++
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case '"', '\\', '/':
			out = append(out, b[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, i+1)
			if !ok {
				return nil, false
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok2 := rune(-1), false
				if i+2 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
					r2, ok2 = hex4(b, i+3)
				}
				if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
		i++
	}
	return nil, false
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Type returns the string value of data's top-level "type" key (the last
// one if it repeats; a null type counts as absent). ok is false when data
// is not one JSON object; typed is false when the object has no "type", or
// a "type" that is not a string.
func Type(data []byte) (typ []byte, typed, ok bool) {
	ok = Object(data, func(key []byte, s *Scanner) bool {
		if string(key) != "type" {
			return s.Skip(0)
		}
		switch s.Peek() {
		case '"':
			v, good := s.Str()
			typ, typed = v, good
			return good
		case 'n':
			typ, typed = nil, false
			return s.Lit("null")
		}
		typ, typed = nil, false
		return s.Skip(0)
	})
	if !ok {
		return nil, false, false
	}
	return typ, typed, true
}
