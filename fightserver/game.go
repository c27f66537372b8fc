// Package fightserver is the built-in fight: a game on arena's public SDK
// (package sdk) with no private hooks. The SDK hosts the rooms (tickets,
// connections, limits, rejoin grace, timeout, results and ratings); this
// package is the rules: players walk, blink, shoot and attack in an
// 800 x 600 arena, the server moves them at their speed and checks every
// attack's range and cooldown, owns hp, and ends the room when one player
// is left standing. See docs/fight.md for the protocol.
package fightserver

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/sdk"
)

// Name is the fight's kind in the fleet.
const Name = "fight"

// Game is the fight as an sdk.Game. The zero value plays by the default
// rules; Setup reads the rules from the game's configuration.
type Game struct {
	rules  Rules
	events [len(eventNames)]prometheus.Counter
}

var (
	_ sdk.Game       = (*Game)(nil)
	_ sdk.Parser     = (*Game)(nil)
	_ sdk.Setupper   = (*Game)(nil)
	_ sdk.Backfiller = (*fight)(nil)
)

// NewGame returns the fight with rules (zero fields: defaults).
func NewGame(rules Rules) *Game {
	g := &Game{rules: rules.withDefaults()}
	for k := 1; k < len(eventNames); k++ {
		g.events[k] = prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"})
	}
	return g
}

// Name implements sdk.Namer.
func (g *Game) Name() string { return Name }

// Setup implements sdk.Setupper: the rules' keys of the configuration
// (attack-damage, attack-cooldown, attack-range, move-speed,
// move-cooldown, blink-range, blink-cooldown, max-players) override the
// game's rules;
// arena_fight_events_total{event} is registered.
func (g *Game) Setup(env sdk.Env) error {
	r, err := parseRules(g.rules, env.Config)
	if err != nil {
		return err
	}
	g.rules = r.withDefaults()
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arena_fight_events_total", Help: "Valid client events received, by event.",
	}, []string{"event"})
	for k := 1; k < len(eventNames); k++ {
		g.events[k] = events.WithLabelValues(eventNames[k])
	}
	return env.Metrics.Register(events)
}

// Rules returns the rules in force.
func (g *Game) Rules() Rules { return g.rules }

// Parse implements sdk.Parser: it decodes and validates an event on the
// sender's connection goroutine (see docs/fight.md "Messages").
func (g *Game) Parse(typ string, data []byte) (any, error) {
	if typ != "event" {
		return nil, sdk.Errorf(CodeUnknownType, "unknown type "+quoteShort(typ))
	}
	_, ev, e := parseClient(data)
	if e != nil {
		return nil, sdk.Errorf(e.Code, e.Message)
	}
	return &ev, nil
}

// New returns an sdk.Server hosting the fight with cfg, for tests and
// programs that embed a fight server (the fleet runs NewProcess).
func New(cfg Config, deps sdk.Deps) (*sdk.Server, error) {
	cfg.Config.Game = Name
	return sdk.New(NewGame(cfg.Rules), cfg.Config, nil, deps)
}

// NewProcess returns the fight as an unstarted fleet process (`arena
// fight`).
func NewProcess(log *slog.Logger) *sdk.Process {
	return sdk.NewProcess(NewGame(Rules{}), log)
}
