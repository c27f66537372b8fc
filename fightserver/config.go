package fightserver

import (
	"fmt"
	"sort"
	"time"

	"github.com/arena-game/arena/internal/wsconn"

	"github.com/arena-game/arena/internal/fleet"
)

// Option keys a fight process reads from fleet.StartConfig.Options. Every
// value is a string; durations use Go syntax ("10m", "30s", "250ms").
const (
	OptRoomTimeout    = "room-timeout"    // how long a room may last (default 10m)
	OptRejoinGrace    = "rejoin-grace"    // how long a dropped (or never-arrived) player may take to (re)join (default 30s)
	OptEventRate      = "event-rate"      // messages per second per player before close (default 40)
	OptEventBurst     = "event-burst"     // token-bucket burst for event-rate (default 200)
	OptAttackDamage   = "attack-damage"   // hp an attack takes (default 20)
	OptAttackCooldown = "attack-cooldown" // minimum time between one player's attacks (default 400ms)
)

// Defaults.
const (
	DefaultRoomTimeout = 10 * time.Minute
	DefaultRejoinGrace = 30 * time.Second
	DefaultEventRate   = 40.0
	// DefaultEventBurst is five seconds at DefaultEventRate. The bucket
	// counts messages as the server reads them, so after a stall (a server
	// starved of CPU) what a client sent meanwhile arrives at once: at 20
	// messages a second a client survives a 10 s stall. A flood of 1,000 a
	// second still empties the bucket in about 0.2 s.
	DefaultEventBurst     = 200
	DefaultAttackDamage   = 20
	DefaultAttackCooldown = 400 * time.Millisecond
	// StartHP is every player's hp when a room starts.
	StartHP = 100
	// MinPlayers and MaxPlayers bound a room's size.
	MinPlayers = 2
	MaxPlayers = 16
	// EloK is the Elo K factor.
	EloK = 32
)

// Config is a fight server's behaviour. The zero value of a field takes its
// default (see Defaults); use DefaultConfig or ParseOptions.
type Config struct {
	// RoomTimeout ends a room with reason "timeout" this long after it was
	// assigned (earlier if the room's Expires comes first).
	RoomTimeout time.Duration
	// RejoinGrace is how long a member who dropped, or who never arrived,
	// keeps its place. Past it the member has left (and lost).
	RejoinGrace time.Duration
	// EventRate is the sustained number of messages per second one
	// connection may send; EventBurst is the bucket size. Past them the
	// player gets a rate_limited error and the connection is closed.
	EventRate  float64
	EventBurst int
	// AttackDamage is the hp one attack takes; clients never choose it.
	AttackDamage int
	// AttackCooldown is the minimum time between one player's attacks;
	// negative means none.
	AttackCooldown time.Duration
	// EndedMemory is how long an ended room's id is remembered, so late
	// joiners get room_over rather than wrong_room (default 1h).
	EndedMemory time.Duration
	// WS are the WebSocket limits (default: 64 KiB messages, 256 queued
	// outbound messages per connection, 60s idle, pings every 25s, a 1 KiB
	// read buffer).
	WS wsconn.Options
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
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
	if c.AttackDamage <= 0 {
		c.AttackDamage = DefaultAttackDamage
	}
	if c.AttackCooldown == 0 { // negative means no cooldown
		c.AttackCooldown = DefaultAttackCooldown
	}
	if c.EndedMemory <= 0 {
		c.EndedMemory = time.Hour
	}
	if c.WS.MaxMessage <= 0 {
		c.WS.MaxMessage = 64 << 10
	}
	if c.WS.ReadBuffer <= 0 {
		c.WS.ReadBuffer = 1 << 10 // fight messages are ~100 bytes; larger ones are read through
	}
	return c
}

// ParseOptions builds a Config from the dispatcher's option map. Keys it
// does not know are returned in unknown (sorted) and otherwise ignored; a
// known key with a bad or out-of-range value is an error naming the key.
func ParseOptions(opts map[string]string) (cfg Config, unknown []string, err error) {
	cfg = DefaultConfig()
	for k, v := range opts {
		switch k {
		case OptRoomTimeout:
			cfg.RoomTimeout, err = fleet.OptionDuration(k, v, 10*time.Millisecond, 24*time.Hour)
		case OptRejoinGrace:
			cfg.RejoinGrace, err = fleet.OptionDuration(k, v, 10*time.Millisecond, time.Hour)
		case OptEventRate:
			cfg.EventRate, err = fleet.OptionNumber(k, v, 0.1, 100000)
		case OptEventBurst:
			cfg.EventBurst, err = fleet.OptionInt(k, v, 1, 1000000)
		case OptAttackDamage:
			cfg.AttackDamage, err = fleet.OptionInt(k, v, 1, StartHP)
		case OptAttackCooldown:
			cfg.AttackCooldown, err = fleet.OptionDuration(k, v, 0, time.Hour)
			if err == nil && cfg.AttackCooldown == 0 {
				cfg.AttackCooldown = -1 // explicit zero: no cooldown
			}
		default:
			unknown = append(unknown, k)
			continue
		}
		if err != nil {
			return Config{}, nil, fmt.Errorf("parse options: %w", err)
		}
	}
	sort.Strings(unknown)
	return cfg.withDefaults(), unknown, nil
}
