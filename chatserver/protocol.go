package chatserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/safetext"
)

// Channel names.
const (
	ChannelWorld    = "world"
	ChannelAnnounce = "announce"
	// RoomPrefix starts the name of a fight room's channel: "room:" + room id.
	RoomPrefix = "room:"
)

// Limits of the protocol that are not configurable.
const (
	// MaxRoomID is the longest room id accepted in a channel name.
	MaxRoomID = ids.MaxLen
	// MaxUUID is the longest uuid accepted as a private message recipient.
	MaxUUID = ids.MaxLen
	// MaxRef is the longest client "ref" echoed back in acks and errors.
	MaxRef = 64
	// MaxUsername is how many runes of the token's username go into messages.
	MaxUsername = 64
)

// Error codes sent in {"type":"error","code":...}. Every refusal the server
// makes is one of these; docs/chat.md lists when each is sent.
const (
	CodeUnauthorized   = "unauthorized"    // HTTP 401 before upgrading: missing, bad or expired player token, bad operator token
	CodeBadJSON        = "bad_json"        // the frame is not one JSON object
	CodeUnknownType    = "unknown_type"    // "type" names no message the server knows
	CodeBadRequest     = "bad_request"     // a field is missing, empty or too long
	CodeTooLong        = "too_long"        // text over the rune limit
	CodeBadText        = "bad_text"        // text with control, bidirectional or invisible characters (internal/safetext)
	CodeUnknownChannel = "unknown_channel" // not world, announce or room:ID
	CodeBadToken       = "bad_token"       // the room token is missing, forged, expired or not a room token
	CodeForbidden      = "forbidden"       // not allowed: announce without operator, another room's or player's token
	CodeNotJoined      = "not_joined"      // posting to or leaving a channel the connection is not in
	CodeAlreadyJoined  = "already_joined"  // joining a channel twice
	CodeTooMany        = "too_many_channels"
	CodeRateLimited    = "rate_limited" // over the per-player rate; persistent flooding closes (1008)
	CodeChannelBusy    = "channel_busy" // the world channel's own rate is spent; try again
	CodeOffline        = "offline"      // private message to a player with no connection
	CodeUnavailable    = "unavailable"  // the server is draining or full
	CodeInternal       = "internal"     // a server-side failure
)

// Inbound is one client message after parsing. Unknown fields, including any
// sender fields a client adds ("from", "uuid", "username"), are ignored: the
// sender always comes from the connection's token.
type Inbound struct {
	Type    string `json:"type"`
	Channel string `json:"channel,omitempty"`
	Text    string `json:"text,omitempty"`
	To      string `json:"to,omitempty"`
	Token   string `json:"token,omitempty"`
	Ref     string `json:"ref,omitempty"`
}

// ProtocolError is a refusal with its wire code. It is what the server sends
// as {"type":"error"}.
type ProtocolError struct {
	Code    string
	Message string
}

func (e *ProtocolError) Error() string { return e.Code + ": " + e.Message }

func perr(code, format string, args ...any) *ProtocolError {
	return &ProtocolError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ParseInbound decodes and checks one client frame against the static
// limits (maxText runes of text). It returns the message or a
// *ProtocolError; it never panics on any input.
func ParseInbound(data []byte, maxText int) (Inbound, error) {
	var in Inbound
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return in, perr(CodeBadJSON, "a message is one JSON object")
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return Inbound{}, perr(CodeBadJSON, "a message is one JSON object")
	}
	if len(in.Ref) > MaxRef {
		return Inbound{}, perr(CodeBadRequest, "ref is longer than %d bytes", MaxRef)
	}
	switch in.Type {
	case "":
		return in, perr(CodeBadRequest, `"type" is required`)
	case "ping":
		return in, nil
	case "join", "leave":
		if _, err := ParseChannel(in.Channel); err != nil {
			return in, err
		}
		return in, nil
	case "post":
		if _, err := ParseChannel(in.Channel); err != nil {
			return in, err
		}
		return in, checkText(in.Text, maxText)
	case "private":
		if !ids.Valid(in.To) {
			return in, perr(CodeBadRequest, `"to" must be a player uuid`)
		}
		return in, checkText(in.Text, maxText)
	default:
		t := in.Type
		if len(t) > 32 {
			t = t[:32]
		}
		return in, perr(CodeUnknownType, "unknown message type %q", t)
	}
}

func checkText(text string, maxText int) error {
	if strings.TrimSpace(text) == "" {
		return perr(CodeBadRequest, `"text" is empty`)
	}
	if n := utf8.RuneCountInString(text); n > maxText {
		return perr(CodeTooLong, "text is %d characters; the limit is %d", n, maxText)
	}
	if err := safetext.Check(text); err != nil {
		return perr(CodeBadText, "%v", err)
	}
	return nil
}

// ChannelKind classifies a channel name.
type ChannelKind int

// Channel kinds.
const (
	KindWorld ChannelKind = iota + 1
	KindAnnounce
	KindRoom
)

func (k ChannelKind) String() string {
	switch k {
	case KindWorld:
		return "world"
	case KindAnnounce:
		return "announce"
	case KindRoom:
		return "room"
	}
	return "unknown"
}

// ParseChannel returns the kind of the channel named name, or a
// *ProtocolError with CodeUnknownChannel. Room ids are 1 to MaxRoomID
// characters of [A-Za-z0-9_.-].
func ParseChannel(name string) (ChannelKind, error) {
	switch name {
	case ChannelWorld:
		return KindWorld, nil
	case ChannelAnnounce:
		return KindAnnounce, nil
	case "":
		return 0, perr(CodeUnknownChannel, `"channel" is required`)
	}
	if id, ok := strings.CutPrefix(name, RoomPrefix); ok && ids.Valid(id) {
		return KindRoom, nil
	}
	return 0, perr(CodeUnknownChannel, "unknown channel %s: use world, announce or room:ROOMID", strconv.Quote(clip(name, 80)))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// clipRunes returns the first n runes of s.
func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}

// Sender is who sent a message, always taken from a verified token.
type Sender struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Bot      bool   `json:"bot,omitempty"`
}

// Message is a channel or private message as every recipient sees it and as
// history keeps it.
type Message struct {
	Type    string `json:"type"` // "message" or "private"
	Channel string `json:"channel,omitempty"`
	To      string `json:"to,omitempty"` // private messages: the recipient
	ID      string `json:"id"`
	TS      int64  `json:"ts"` // unix milliseconds
	From    Sender `json:"from"`
	Text    string `json:"text"`
}

type errorMsg struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Ref     string `json:"ref,omitempty"`
}

type ackMsg struct {
	Type string `json:"type"`
	Ref  string `json:"ref"`
	ID   string `json:"id"`
}

type welcomeMsg struct {
	Type     string       `json:"type"`
	UUID     string       `json:"uuid"`
	Username string       `json:"username"`
	Operator bool         `json:"operator"`
	Limits   welcomeLimit `json:"limits"`
}

type welcomeLimit struct {
	Text        int     `json:"text"`
	Rate        float64 `json:"rate"`
	Burst       int     `json:"burst"`
	History     int     `json:"history"`
	MaxChannels int     `json:"max_channels"`
	MaxFrame    int     `json:"max_frame"`
}

type joinedMsg struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Online  *int64 `json:"online,omitempty"`
	Ref     string `json:"ref,omitempty"`
}

type leftMsg struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Ref     string `json:"ref,omitempty"`
}

type onlineMsg struct {
	Type    string `json:"type"`
	Channel string `json:"channel"`
	Count   int64  `json:"count"`
}

// encodeError renders an error frame.
func encodeError(code, message, ref string) []byte {
	b, _ := json.Marshal(errorMsg{Type: "error", Code: code, Message: message, Ref: ref})
	return b
}

// asProtocolError maps err to a wire error; anything that is not a
// *ProtocolError becomes CodeInternal without leaking its text.
func asProtocolError(err error) *ProtocolError {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return pe
	}
	return &ProtocolError{Code: CodeInternal, Message: "internal error"}
}

// historyFrames renders history entries (each one encoded Message) as
// {"type":"history","channel":C,"messages":[...],"last":bool} frames of at
// most maxFrame bytes each (one entry alone may exceed it only if it is
// itself larger, which the text limit prevents). There is always at least
// one frame; the final one has "last": true.
func historyFrames(channel string, entries []json.RawMessage, maxFrame int) [][]byte {
	head := `{"type":"history","channel":` + strconv.Quote(channel) + `,"messages":[`
	var frames [][]byte
	cur := []byte(head)
	n := 0
	flush := func(last bool) {
		if last {
			cur = append(cur, `],"last":true}`...)
		} else {
			cur = append(cur, `],"last":false}`...)
		}
		frames = append(frames, cur)
		cur = []byte(head)
		n = 0
	}
	for _, e := range entries {
		if n > 0 && len(cur)+len(e)+1+20 > maxFrame {
			flush(false)
		}
		if n > 0 {
			cur = append(cur, ',')
		}
		cur = append(cur, e...)
		n++
	}
	flush(true)
	return frames
}
