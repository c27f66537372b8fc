package fightserver

import (
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/jsonnum"
)

// This file is the client message decoder: a single-pass scanner for one
// JSON object with flat fields, written for the relay's hot path (no
// reflection, no allocation for numbers and ids without escapes). It
// accepts exactly RFC 8259 JSON; keys match exactly (case-sensitive); a
// repeated key's last value wins; null for a known field means absent;
// unknown fields are skipped whatever their value (nesting at most
// maxDepth deep) and never reach other players.

// maxDepth bounds the nesting of unknown field values.
const maxDepth = 64

type fieldID uint8

const (
	fNone fieldID = iota
	fType
	fEvent
	fTX
	fTY
	fX
	fY
	fAngle
	fTarget
	fBall
	fText
	fTS
	nFields
)

var fieldNames = [nFields]string{"", "type", "event", "tx", "ty", "x", "y", "angle", "target", "ball_uuid", "text", "ts"}

func isNumField(f fieldID) bool { return f >= fTX && f <= fAngle || f == fTS }

func lookupField(key []byte) fieldID {
	switch string(key) { // no allocation: the compiler compares in place
	case "type":
		return fType
	case "event":
		return fEvent
	case "tx":
		return fTX
	case "ty":
		return fTY
	case "x":
		return fX
	case "y":
		return fY
	case "angle":
		return fAngle
	case "target":
		return fTarget
	case "ball_uuid":
		return fBall
	case "text":
		return fText
	case "ts":
		return fTS
	}
	return fNone
}

// fields is what scanning found: for each known field whether it was
// present (non-null), its number, or its string.
type fields struct {
	has     [nFields]bool
	num     [nFields]float64
	str     [nFields][]byte // may alias the message: valid only while it is
	bad     fieldID         // first field other than type with a value of the wrong JSON type
	badN    bool            // bad is a number out of float64's range
	badType bool            // "type" had a value that is not a string
}

// setBad records that field id had a value of the wrong type.
func (f *fields) setBad(id fieldID, outOfRange bool) {
	if id == fType {
		f.badType = true
	} else if f.bad == fNone {
		f.bad, f.badN = id, outOfRange
	}
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// scanObject scans the whole message into f; false means it is not one
// JSON object.
func scanObject(data []byte, f *fields) bool {
	if !utf8.Valid(data) {
		return false
	}
	s := scanner{b: data}
	s.ws()
	if s.peek() != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.peek() == '}' {
		s.i++
		s.ws()
		return s.i == len(s.b)
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return false
		}
		key, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.ws()
		if !s.field(lookupField(key), f) {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			s.ws()
			return s.i == len(s.b)
		default:
			return false
		}
	}
}

// field scans one value for field id.
func (s *scanner) field(id fieldID, f *fields) bool {
	c := s.peek()
	if id == fNone {
		return s.skip(0)
	}
	if c == 'n' {
		if !s.lit("null") {
			return false
		}
		f.has[id] = false
		return true
	}
	wantNum := isNumField(id)
	switch {
	case c == '"' && !wantNum:
		v, ok := s.str()
		if !ok {
			return false
		}
		f.has[id], f.str[id] = true, v
		return true
	case (c == '-' || c >= '0' && c <= '9') && wantNum:
		start := s.i
		if !s.number() {
			return false
		}
		v, err := jsonnum.Parse(s.b[start:s.i])
		if err != nil {
			f.setBad(id, true)
			return true
		}
		f.has[id], f.num[id] = true, v
		return true
	}
	// A value of another type: remember, and check the rest is JSON.
	f.setBad(id, false)
	return s.skip(0)
}

func (s *scanner) lit(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// skip scans any JSON value.
func (s *scanner) skip(depth int) bool {
	switch c := s.peek(); {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '[' || c == '{':
		if depth >= maxDepth {
			return false
		}
		s.i++
		s.ws()
		end := byte(']')
		if c == '{' {
			end = '}'
		}
		if s.peek() == end {
			s.i++
			return true
		}
		for {
			s.ws()
			if c == '{' {
				if s.peek() != '"' {
					return false
				}
				if _, ok := s.str(); !ok {
					return false
				}
				s.ws()
				if s.peek() != ':' {
					return false
				}
				s.i++
				s.ws()
			}
			if !s.skip(depth + 1) {
				return false
			}
			s.ws()
			switch s.peek() {
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

// number scans a JSON number.
func (s *scanner) number() bool {
	n := jsonnum.Len(s.b[s.i:])
	s.i += n
	return n > 0
}

// str scans a JSON string at s.i (which is '"') and returns its value.
// Without escapes the value aliases the input; with escapes it is a new,
// decoded slice.
func (s *scanner) str() ([]byte, bool) {
	b := s.b
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

// strSlow decodes a string with escapes; lone surrogates become U+FFFD, as
// encoding/json does.
func (s *scanner) strSlow(start int) ([]byte, bool) {
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

// parseClient decodes and validates one client message. It never panics;
// every refusal is a protoError whose code the client is sent.
func parseClient(data []byte) (msgType, event, *protoError) {
	var f fields
	if !scanObject(data, &f) {
		return 0, event{}, perr(CodeBadJSON, "a message is one JSON object")
	}
	return validate(&f)
}

// validate turns scanned fields into a message: type, event name, the
// event's required fields and their ranges.
func validate(f *fields) (msgType, event, *protoError) {
	var ev event
	switch {
	case f.badType:
		return 0, ev, perr(CodeUnknownType, `"type" must be a string`)
	case f.bad != fNone:
		name := strconv.Quote(fieldNames[f.bad])
		switch {
		case f.badN:
			return 0, ev, perr(CodeBadEvent, name+" out of range")
		case isNumField(f.bad):
			return 0, ev, perr(CodeBadEvent, name+" must be a number")
		}
		return 0, ev, perr(CodeBadEvent, name+" must be a string")
	case !f.has[fType]:
		return 0, ev, perr(CodeUnknownType, `missing "type"`)
	}
	switch string(f.str[fType]) {
	case "ping":
		return msgPing, ev, nil
	case "leave":
		return msgLeave, ev, nil
	case "event":
	default:
		return 0, ev, perr(CodeUnknownType, "unknown type "+quoteShort(string(f.str[fType])))
	}
	if !f.has[fEvent] {
		return 0, ev, perr(CodeUnknownEvent, `missing "event"`)
	}
	switch string(f.str[fEvent]) {
	case EventMoveTo:
		ev.kind = evMoveTo
	case EventShootFireball:
		ev.kind = evShoot
	case EventAttack:
		ev.kind = evAttack
	case EventBlink:
		ev.kind = evBlink
	case EventMessage:
		ev.kind = evMessage
	default:
		return 0, ev, perr(CodeUnknownEvent, "unknown event "+quoteShort(string(f.str[fEvent])))
	}
	var e *protoError
	num := func(id fieldID, limit float64) float64 {
		switch {
		case e != nil:
		case !f.has[id]:
			e = perr(CodeBadEvent, "missing "+strconv.Quote(fieldNames[id]))
		case math.Abs(f.num[id]) > limit:
			e = perr(CodeBadEvent, strconv.Quote(fieldNames[id])+" out of range")
		default:
			return f.num[id]
		}
		return 0
	}
	id := func(fid fieldID) string {
		switch {
		case e != nil:
		case !f.has[fid]:
			e = perr(CodeBadEvent, "missing "+strconv.Quote(fieldNames[fid]))
		case !ids.Valid(f.str[fid]):
			e = perr(CodeBadEvent, strconv.Quote(fieldNames[fid])+" must be 1 to 64 of [A-Za-z0-9_-]")
		default:
			return string(f.str[fid])
		}
		return ""
	}
	switch ev.kind {
	case evMoveTo, evBlink:
		ev.tx, ev.ty = num(fTX, MaxCoord), num(fTY, MaxCoord)
	case evShoot:
		ev.tx, ev.ty = num(fTX, MaxCoord), num(fTY, MaxCoord)
		ev.ball = id(fBall)
	case evAttack:
		ev.target, ev.ball = id(fTarget), id(fBall)
		ev.x, ev.y, ev.angle = num(fX, MaxCoord), num(fY, MaxCoord), num(fAngle, MaxAngle)
	case evMessage:
		t := f.str[fText]
		switch {
		case !f.has[fText]:
			e = perr(CodeBadEvent, `missing "text"`)
		case len(t) == 0:
			e = perr(CodeBadEvent, `empty "text"`)
		case utf8.RuneCount(t) > MaxTextRunes:
			e = perr(CodeBadEvent, `"text" is over 200 characters`)
		case hasControl(string(t)):
			e = perr(CodeBadEvent, `"text" has control characters`)
		default:
			ev.text = string(t)
		}
	}
	if e == nil && f.has[fTS] {
		t := f.num[fTS]
		if t < 0 || t > MaxTS || t != math.Trunc(t) {
			e = perr(CodeBadEvent, `"ts" must be an integer in [0, 2^53]`)
		} else {
			ev.ts, ev.hasTS = int64(t), true
		}
	}
	if e != nil {
		return 0, event{}, e
	}
	return msgEvent, ev, nil
}
