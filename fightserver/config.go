package fightserver

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
	"github.com/arena-game/arena/sdk"
)

// Option keys of the fight's configuration (the typed FightOptions of the
// process contract, as JSON keys: `--fight-option KEY=VALUE`); durations
// use Go syntax ("10m", "30s", "250ms"). room-timeout, rejoin-grace, event-rate and event-burst
// are the SDK's own settings (sdk.Key*); the others are the fight's rules.
const (
	OptRoomTimeout    = sdk.KeyRoomTimeout // how long a room may last (default 10m)
	OptRejoinGrace    = sdk.KeyRejoinGrace // how long a dropped (or never-arrived) player may take to (re)join (default 30s)
	OptEventRate      = sdk.KeyEventRate   // messages per second per player before close (default 40)
	OptEventBurst     = sdk.KeyEventBurst  // token-bucket burst for event-rate (default 200)
	OptAttackDamage   = "attack-damage"    // hp an attack takes (default 20)
	OptAttackCooldown = "attack-cooldown"  // minimum time between one player's attacks (default 400ms)
	OptAttackRange    = "attack-range"     // farthest an attack reaches, in arena units (default 300)
	OptMoveSpeed      = "move-speed"       // units per second a player walks (default 240)
	OptMoveCooldown   = "move-cooldown"    // minimum time between one player's move_to events (default 0: none)
	OptBlinkRange     = "blink-range"      // farthest a blink goes (default 160)
	OptBlinkCooldown  = "blink-cooldown"   // minimum time between one player's blinks (default 3s)
	OptMaxPlayers     = "max-players"      // the most players alive in one fight at once (default 16)
	OptSnapshotEvery  = "snapshot-every"   // how often a room whose positions changed saves its state (default 1s; 0: rooms never save and fail with their process)
)

// Defaults.
const (
	DefaultRoomTimeout    = sdk.DefaultRoomTimeout
	DefaultRejoinGrace    = sdk.DefaultRejoinGrace
	DefaultEventRate      = sdk.DefaultEventRate
	DefaultEventBurst     = sdk.DefaultEventBurst
	DefaultAttackDamage   = 20
	DefaultAttackCooldown = 400 * time.Millisecond
	DefaultAttackRange    = 300.0
	DefaultMoveSpeed      = 240.0
	DefaultBlinkRange     = 160.0
	DefaultBlinkCooldown  = 3 * time.Second
	DefaultSnapshotEvery  = time.Second
	// StartHP is every player's hp when a room starts.
	StartHP = 100
	// MinPlayers and MaxPlayers bound a room's size (MaxPlayers is also
	// the default and the largest max-players).
	MinPlayers = 2
	MaxPlayers = 16
	// ArenaW and ArenaH are the arena's size; positions stay inside it.
	ArenaW = 800.0
	ArenaH = 600.0
)

// Rules are the fight's rules. Zero fields take the defaults; a negative
// cooldown means none.
type Rules struct {
	// AttackDamage is the hp one attack takes; clients never choose it.
	AttackDamage int
	// AttackCooldown is the minimum time between one player's attacks.
	AttackCooldown time.Duration
	// AttackRange is how far from the attacker's position (as the server
	// moves it) a target may be.
	AttackRange float64
	// MoveSpeed is how fast a player walks toward its move_to target.
	MoveSpeed float64
	// MoveCooldown is the minimum time between one player's move_to
	// events (zero: none).
	MoveCooldown time.Duration
	// BlinkRange is the farthest a blink jumps from the player's position.
	BlinkRange float64
	// BlinkCooldown is the minimum time between one player's blinks.
	BlinkCooldown time.Duration
	// MaxPlayers is the most players alive in one fight at once
	// (MinPlayers to MaxPlayers): a larger room is refused, and so is a
	// backfill that would pass it.
	MaxPlayers int
	// SnapshotEvery is how often a room whose fighters moved saves its
	// state (sdk Room.Save); first joins, hp, outs, quits and backfills
	// save at once.
	// Negative: rooms never save, and fail when their process dies.
	SnapshotEvery time.Duration
}

func (r Rules) withDefaults() Rules {
	if r.AttackDamage <= 0 {
		r.AttackDamage = DefaultAttackDamage
	}
	if r.AttackCooldown == 0 {
		r.AttackCooldown = DefaultAttackCooldown
	}
	if r.AttackRange <= 0 {
		r.AttackRange = DefaultAttackRange
	}
	if r.MoveSpeed <= 0 {
		r.MoveSpeed = DefaultMoveSpeed
	}
	if r.BlinkRange <= 0 {
		r.BlinkRange = DefaultBlinkRange
	}
	if r.BlinkCooldown == 0 {
		r.BlinkCooldown = DefaultBlinkCooldown
	}
	if r.SnapshotEvery == 0 {
		r.SnapshotEvery = DefaultSnapshotEvery
	}
	if r.MaxPlayers <= 0 || r.MaxPlayers > MaxPlayers {
		r.MaxPlayers = MaxPlayers
	}
	return r
}

// Config is a fight server's behaviour: the SDK's settings and the rules.
// The zero value of a field takes its default; use DefaultConfig or
// ConfigFromOptions.
type Config struct {
	sdk.Config
	Rules
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Config: sdk.Config{Game: Name, RoomTimeout: DefaultRoomTimeout, RejoinGrace: DefaultRejoinGrace,
		EventRate: DefaultEventRate, EventBurst: DefaultEventBurst}, Rules: Rules{}.withDefaults()}
}

// ConfigFromOptions builds a Config from the typed fight options a host
// passes in proc.StartRequest (nil: every default): the SDK's settings and
// the rules, read from their configuration JSON (proc.OptionsJSON) by the
// SDK's and the fight's parsers, as a fight process reads them. A value
// out of its range is an error wrapping proc.ErrBadOptions.
func ConfigFromOptions(o *procpb.FightOptions) (Config, error) {
	raw := proc.OptionsJSON(o)
	cfg := DefaultConfig()
	var err error
	if cfg.Config, err = sdk.ParseConfig(cfg.Config, raw); err != nil {
		return Config{}, fmt.Errorf("%w: %v", proc.ErrBadOptions, err)
	}
	if cfg.Rules, err = parseRules(cfg.Rules, raw); err != nil {
		return Config{}, fmt.Errorf("%w: %v", proc.ErrBadOptions, err)
	}
	return cfg, nil
}

// parseRules reads the rules' keys from a configuration JSON object of
// strings (or numbers) on top of base.
func parseRules(base Rules, raw []byte) (Rules, error) {
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return base, fmt.Errorf("parse fight options: %w", err)
		}
	}
	r := base
	str := func(k string) (string, bool) {
		v, ok := m[k]
		if !ok {
			return "", false
		}
		switch v := v.(type) {
		case string:
			return v, true
		case float64:
			return fmt.Sprint(v), true
		}
		return "?", true
	}
	dur := func(k string, dst *time.Duration, lo, hi time.Duration) error {
		s, ok := str(k)
		if !ok {
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil || d < lo || d > hi {
			return fmt.Errorf("parse fight options: %s: %q is not a duration from %v to %v", k, s, lo, hi)
		}
		if d == 0 {
			d = -1 // explicit zero: none
		}
		*dst = d
		return nil
	}
	num := func(k string, dst *float64, lo, hi float64) error {
		s, ok := str(k)
		if !ok {
			return nil
		}
		var f float64
		if _, err := fmt.Sscan(s, &f); err != nil || f != f || f < lo || f > hi {
			return fmt.Errorf("parse fight options: %s: %q is not a number from %v to %v", k, s, lo, hi)
		}
		*dst = f
		return nil
	}
	dmg, most := float64(r.AttackDamage), float64(r.MaxPlayers)
	for _, err := range []error{
		num(OptAttackDamage, &dmg, 1, StartHP),
		num(OptMaxPlayers, &most, MinPlayers, MaxPlayers),
		dur(OptAttackCooldown, &r.AttackCooldown, 0, time.Hour),
		num(OptAttackRange, &r.AttackRange, 1, 100000),
		num(OptMoveSpeed, &r.MoveSpeed, 1, 1000000),
		dur(OptMoveCooldown, &r.MoveCooldown, 0, time.Hour),
		num(OptBlinkRange, &r.BlinkRange, 1, 100000),
		dur(OptBlinkCooldown, &r.BlinkCooldown, 0, time.Hour),
		dur(OptSnapshotEvery, &r.SnapshotEvery, 0, time.Minute),
	} {
		if err != nil {
			return base, err
		}
	}
	if dmg != float64(int(dmg)) {
		return base, fmt.Errorf("parse fight options: %s: want a whole number", OptAttackDamage)
	}
	if most != float64(int(most)) {
		return base, fmt.Errorf("parse fight options: %s: want a whole number", OptMaxPlayers)
	}
	r.AttackDamage, r.MaxPlayers = int(dmg), int(most)
	if r.MoveCooldown < 0 {
		r.MoveCooldown = 0
	}
	return r.withDefaults(), nil
}
