package sdk

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/arena-game/arena/internal/wsconn"
)

// Defaults of Config.
const (
	DefaultRoomTimeout      = 10 * time.Minute
	DefaultRejoinGrace      = 30 * time.Second
	DefaultEventRate        = 40.0
	DefaultEventBurst       = 200
	DefaultMaxMessage       = 64 << 10
	DefaultInbox            = 256
	DefaultCallbackDeadline = 2 * time.Second
	// MinPlayers and MaxPlayers bound a room's size at assignment.
	MinPlayers = 1
	MaxPlayers = 64
)

// Config is what the SDK does around a game's rules. Zero fields take the
// defaults. In the fleet it comes from the game's configuration JSON (keys
// in docs/your-game.md); tests set it directly.
type Config struct {
	// Game is the game's name, its kind in the fleet ("fight", "turns").
	Game string
	// RoomTimeout ends a room that has not ended this long after its
	// assignment (earlier when the room's tickets expire first): with the
	// Handler's TimeoutHandler result, else a draw (default 10 min).
	RoomTimeout time.Duration
	// RejoinGrace is how long a player who dropped, or who never arrived,
	// keeps its seat (default 30 s).
	RejoinGrace time.Duration
	// EventRate and EventBurst are one player's token bucket: messages per
	// second (every message counts: pings and WebSocket pings too) and
	// the bucket size (defaults 40 and 200). Past them the player gets
	// rate_limited and its connection is closed (1008).
	EventRate  float64
	EventBurst int
	// MaxMessage is the largest frame accepted from a client (a larger one
	// closes with 1009) and the largest a game may send (Send returns
	// ErrTooBig). Default 64 KiB.
	MaxMessage int
	// Inbox is how many client messages may wait for a room's goroutine
	// (default 256). Past it a message is refused with room_busy and
	// dropped; the connection stays open. Joins, drops and timers are
	// never refused.
	Inbox int
	// CallbackDeadline is how long one Handler call may run; past it the
	// room ends with reason "stuck" (default 2 s).
	CallbackDeadline time.Duration
	// EndedMemory is how long an ended room's id is remembered, so late
	// joiners hear room_over (default 1 h).
	EndedMemory time.Duration
	// WS are the WebSocket limits (MaxMessage overrides WS.MaxMessage).
	WS wsconn.Options
}

func (c Config) withDefaults() Config {
	if c.Game == "" {
		c.Game = "game"
	}
	if c.RoomTimeout <= 0 {
		c.RoomTimeout = DefaultRoomTimeout
	}
	if c.RejoinGrace <= 0 {
		c.RejoinGrace = DefaultRejoinGrace
	}
	if c.EventRate <= 0 {
		c.EventRate = DefaultEventRate
	}
	if c.EventBurst <= 0 {
		c.EventBurst = DefaultEventBurst
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = DefaultMaxMessage
	}
	if c.Inbox <= 0 {
		c.Inbox = DefaultInbox
	}
	if c.CallbackDeadline <= 0 {
		c.CallbackDeadline = DefaultCallbackDeadline
	}
	if c.EndedMemory <= 0 {
		c.EndedMemory = time.Hour
	}
	c.WS.MaxMessage = c.MaxMessage
	if c.WS.ReadBuffer <= 0 {
		c.WS.ReadBuffer = 1 << 10 // game messages are small; larger ones are read through
	}
	return c
}

// Keys of the SDK's settings in a game's configuration JSON. Durations are
// Go duration strings ("90s", "10m"); numbers may be JSON numbers or
// strings. Every other key is the game's own.
const (
	KeyRoomTimeout      = "room-timeout"
	KeyRejoinGrace      = "rejoin-grace"
	KeyEventRate        = "event-rate"
	KeyEventBurst       = "event-burst"
	KeyMaxMessage       = "max-message"
	KeyInbox            = "inbox"
	KeyCallbackDeadline = "callback-deadline"
)

// ParseConfig reads the SDK's settings from a game's configuration JSON
// (an object; empty means {}) on top of base. Values out of range are an
// error naming the key (wrapping ErrBadConfig); other keys are left for
// the game.
func ParseConfig(base Config, raw []byte) (Config, error) {
	if len(raw) == 0 {
		return base, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return base, fmt.Errorf("parse config: %w: not a JSON object: %w", ErrBadConfig, err)
	}
	c := base
	var err error
	for k, v := range m {
		switch k {
		case KeyRoomTimeout:
			c.RoomTimeout, err = durationValue(k, v, 10*time.Millisecond, 24*time.Hour)
		case KeyRejoinGrace:
			c.RejoinGrace, err = durationValue(k, v, 10*time.Millisecond, time.Hour)
		case KeyCallbackDeadline:
			c.CallbackDeadline, err = durationValue(k, v, 10*time.Millisecond, time.Minute)
		case KeyEventRate:
			c.EventRate, err = numberValue(k, v, 0.1, 100000)
		case KeyEventBurst:
			var f float64
			f, err = numberValue(k, v, 1, 1000000)
			c.EventBurst = int(f)
		case KeyMaxMessage:
			var f float64
			f, err = numberValue(k, v, 256, 16<<20)
			c.MaxMessage = int(f)
		case KeyInbox:
			var f float64
			f, err = numberValue(k, v, 1, 1<<20)
			c.Inbox = int(f)
		}
		if err != nil {
			return base, fmt.Errorf("parse config: %w: %w", ErrBadConfig, err)
		}
	}
	return c, nil
}

// ConfigFromOptions turns the fleet's string options into a configuration
// JSON object of strings (the SDK and games accept numbers as strings).
func ConfigFromOptions(opts map[string]string) []byte {
	if len(opts) == 0 {
		return []byte("{}")
	}
	b, _ := json.Marshal(opts)
	return b
}

func stringValue(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, true
	}
	return "", false
}

func durationValue(k string, v json.RawMessage, lo, hi time.Duration) (time.Duration, error) {
	s, ok := stringValue(v)
	if !ok {
		return 0, fmt.Errorf("%s: want a duration string like \"30s\"", k)
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, fmt.Errorf("%s: %q is not a duration from %v to %v", k, s, lo, hi)
	}
	return d, nil
}

func numberValue(k string, v json.RawMessage, lo, hi float64) (float64, error) {
	var f float64
	if err := json.Unmarshal(v, &f); err != nil {
		s, ok := stringValue(v)
		if !ok {
			return 0, fmt.Errorf("%s: want a number", k)
		}
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return 0, fmt.Errorf("%s: %q is not a number", k, s)
		}
	}
	if math.IsNaN(f) || f < lo || f > hi {
		return 0, fmt.Errorf("%s: %v is not from %v to %v", k, f, lo, hi)
	}
	return f, nil
}
