package fightserver

import (
	"encoding/json"
	"strconv"

	"github.com/arena-game/arena/sdk"

	"github.com/arena-game/arena/internal/ids"
)

// Error codes sent as {"type":"error","code":CODE,"message":...}. The
// join, rate-limit and shutdown codes are the SDK's (they close the
// connection); the fight's own leave it open.
const (
	CodeBadTicket      = sdk.CodeBadTicket
	CodeExpiredTicket  = sdk.CodeExpiredTicket
	CodeWrongKind      = sdk.CodeWrongKind
	CodeWrongRoom      = sdk.CodeWrongRoom
	CodeNotMember      = sdk.CodeNotMember
	CodeRoomOver       = sdk.CodeRoomOver
	CodeLeftRoom       = sdk.CodeLeftRoom
	CodeReplaced       = sdk.CodeReplaced
	CodeRateLimited    = sdk.CodeRateLimited
	CodeServerShutdown = sdk.CodeServerShutdown
	CodeBadJSON        = sdk.CodeBadJSON
	CodeUnknownType    = sdk.CodeUnknownType // "type" missing or not one of event, leave, ping
	CodeUnknownEvent   = "unknown_event"     // "event" not one of the five events
	CodeBadEvent       = "bad_event"         // a field is missing, of the wrong type or out of range
	CodeBadTarget      = "bad_target"        // attack on a non-member, oneself, an absent or an out player
	CodeCooldown       = "cooldown"          // attack, blink or move before the player's cooldown passed
	CodeOutOfRange     = "out_of_range"      // attack on a target farther than the attack range
	CodeTooFar         = "too_far"           // blink farther than the blink range
	CodePlayerOut      = "player_out"        // an out player may only send message events
)

// Event names (the "event" field of {"type":"event"}).
const (
	EventMoveTo        = "move_to"
	EventShootFireball = "shoot_fireball"
	EventAttack        = "attack"
	EventBlink         = "blink"
	EventMessage       = "message"
)

// Field limits.
const (
	// MaxCoord bounds every coordinate (tx, ty, x, y): |v| <= MaxCoord.
	MaxCoord = 100000.0
	// MaxAngle bounds angle in radians: |angle| <= MaxAngle.
	MaxAngle = 10.0
	// MaxTextRunes is the longest message text, in characters.
	MaxTextRunes = 200
	// MaxIDLen is the longest uuid, target or ball_uuid (ids.MaxLen).
	MaxIDLen = ids.MaxLen
	// MaxTS is the largest "ts" value: an integer exactly representable
	// in a JavaScript number.
	MaxTS = 1 << 53
)

type eventKind uint8

const (
	evMoveTo eventKind = iota + 1
	evShoot
	evAttack
	evBlink
	evMessage
)

var eventNames = [...]string{"", EventMoveTo, EventShootFireball, EventAttack, EventBlink, EventMessage}

type msgType uint8

const (
	msgEvent msgType = iota + 1
	msgLeave
	msgPing
)

// event is a validated client event. Only the fields of its kind are set.
type event struct {
	kind                eventKind
	tx, ty, x, y, angle float64
	target, ball, text  string
	ts                  int64
	hasTS               bool
}

// protoError is an error the client is told about.
type protoError = sdk.ClientError

func perr(code, msg string) *protoError { return sdk.Errorf(code, msg) }

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "..."
	}
	return strconv.Quote(s)
}

// appendRelay appends the relayed form of ev, sent by uuid (named name), to
// b: {"type":"event","event":NAME,"uuid":SENDER,...fields...,"ts":N}. Only
// validated fields are written; the sender's uuid is the server's.
func appendRelay(b []byte, ev *event, uuid, name string) []byte {
	b = append(b, `{"type":"event","event":"`...)
	b = append(b, eventNames[ev.kind]...)
	b = append(b, `","uuid":"`...)
	b = append(b, uuid...)
	b = append(b, '"')
	switch ev.kind {
	case evMoveTo, evBlink:
		b = appendNum(b, "tx", ev.tx)
		b = appendNum(b, "ty", ev.ty)
	case evShoot:
		b = appendNum(b, "tx", ev.tx)
		b = appendNum(b, "ty", ev.ty)
		b = appendID(b, "ball_uuid", ev.ball)
	case evAttack:
		b = appendID(b, "target", ev.target)
		b = appendID(b, "ball_uuid", ev.ball)
		b = appendNum(b, "x", ev.x)
		b = appendNum(b, "y", ev.y)
		b = appendNum(b, "angle", ev.angle)
	case evMessage:
		b = append(b, `,"username":`...)
		b = appendJSONString(b, name)
		b = append(b, `,"text":`...)
		b = appendJSONString(b, ev.text)
	}
	if ev.hasTS {
		b = append(b, `,"ts":`...)
		b = strconv.AppendInt(b, ev.ts, 10)
	}
	return append(b, '}')
}

func appendNum(b []byte, key string, v float64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

func appendID(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, v...)
	return append(b, '"')
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}
