package fightserver

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/jsonnum"
	"github.com/arena-game/arena/internal/jsonscan"
	"github.com/arena-game/arena/internal/safetext"
)

// This file is the client message decoder: a single-pass scanner for one
// JSON object with flat fields, written for the relay's hot path (no
// reflection, no allocation for numbers and ids without escapes). It
// accepts exactly RFC 8259 JSON; keys match exactly (case-sensitive); a
// repeated key's last value wins; null for a known field means absent;
// unknown fields are skipped whatever their value (nesting at most
// maxDepth deep) and never reach other players.

// maxDepth bounds the nesting of unknown field values.
const maxDepth = jsonscan.MaxDepth

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

// scanObject scans the whole message into f; false means it is not one
// JSON object.
func scanObject(data []byte, f *fields) bool {
	return jsonscan.Object(data, func(key []byte, s *jsonscan.Scanner) bool {
		return scanField(s, lookupField(key), f)
	})
}

// scanField scans one value for field id.
func scanField(s *jsonscan.Scanner, id fieldID, f *fields) bool {
	c := s.Peek()
	if id == fNone {
		return s.Skip(0)
	}
	if c == 'n' {
		if !s.Lit("null") {
			return false
		}
		f.has[id] = false
		return true
	}
	wantNum := isNumField(id)
	switch {
	case c == '"' && !wantNum:
		v, ok := s.Str()
		if !ok {
			return false
		}
		f.has[id], f.str[id] = true, v
		return true
	case (c == '-' || c >= '0' && c <= '9') && wantNum:
		num, ok := s.Number()
		if !ok {
			return false
		}
		v, err := jsonnum.Parse(num)
		if err != nil {
			f.setBad(id, true)
			return true
		}
		f.has[id], f.num[id] = true, v
		return true
	}
	// A value of another type: remember, and check the rest is JSON.
	f.setBad(id, false)
	return s.Skip(0)
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
		case safetext.Check(string(t)) != nil:
			e = perr(CodeBadEvent, `"text" has control, bidirectional or invisible characters`)
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
