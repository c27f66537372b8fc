// Package relay is the smallest useful game on the SDK and the benchmark
// workload of `arena bench fight --game` (it takes any kind name, so one
// binary runs as "relay" and as "relaytick"): every message a player sends is
// relayed to the other players of its room, stamped with the sender's
// uuid. With the configuration {"tick":"50ms"} it is a tick-based game
// instead: messages wait for the room's next tick, and each tick every
// player gets the tick's messages in one write (the SDK batches them).
package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/arena-game/arena/sdk"
)

// Game is the relay game.
type Game struct {
	// Tick, when positive, makes rooms tick-based.
	Tick time.Duration
}

var (
	_ sdk.Game     = (*Game)(nil)
	_ sdk.Setupper = (*Game)(nil)
)

// Setup reads "tick" (a Go duration, 1ms-1s) from the configuration.
func (g *Game) Setup(env sdk.Env) error {
	var cfg struct {
		Tick string `json:"tick"`
	}
	if err := json.Unmarshal(env.Config, &cfg); err != nil {
		return fmt.Errorf("relay config: %w", err)
	}
	if cfg.Tick != "" {
		d, err := time.ParseDuration(cfg.Tick)
		if err != nil || d < time.Millisecond || d > time.Second {
			return fmt.Errorf("relay config: tick %q is not a duration from 1ms to 1s", cfg.Tick)
		}
		g.Tick = d
	}
	return nil
}

// NewRoom implements sdk.Game.
func (g *Game) NewRoom(r *sdk.Room) (sdk.Handler, error) {
	h := &room{r: r, tick: g.Tick > 0}
	if h.tick {
		r.SetTick(g.Tick)
	}
	return h, nil
}

type room struct {
	r       *sdk.Room
	tick    bool
	pending []pending // tick mode: the tick's messages
	buf     []byte
}

type pending struct {
	from *sdk.Player
	msg  []byte
}

// Join announces players as the fight does, so one load generator serves
// both: the newcomer gets {"type":"create_player","uuid"} for every player
// already in, and everyone (the newcomer too) one for the newcomer.
func (h *room) Join(p *sdk.Player, how sdk.JoinKind) {
	for _, o := range h.r.Players() {
		if o != p && o.Connected() {
			_ = h.r.Send(p, createPlayer(o))
		}
	}
	if how == sdk.JoinFirst {
		_ = h.r.Broadcast(createPlayer(p))
	} else {
		_ = h.r.Send(p, createPlayer(p))
	}
}

func createPlayer(p *sdk.Player) []byte {
	return []byte(`{"type":"create_player","uuid":"` + p.UUID + `"}`) // uuids need no escaping
}

func (h *room) Leave(*sdk.Player, sdk.LeaveReason) {}

// Message relays m to the others: {"from":UUID, ...the message's fields}.
func (h *room) Message(p *sdk.Player, m sdk.Message) {
	if h.tick {
		h.pending = append(h.pending, pending{p, stamp(nil, p.UUID, m.Raw)})
		return
	}
	h.buf = stamp(h.buf[:0], p.UUID, m.Raw) // the SDK copies on Send
	_ = h.r.BroadcastExcept(p, h.buf)
}

// Tick sends the tick's messages; the SDK writes each player's in one go.
func (h *room) Tick(time.Time) {
	for _, pm := range h.pending {
		_ = h.r.BroadcastExcept(pm.from, pm.msg)
	}
	clear(h.pending)
	h.pending = h.pending[:0]
}

// stamp appends raw (one JSON object, as the SDK checked) with "from"
// first to b.
func stamp(b []byte, uuid string, raw []byte) []byte {
	raw = bytes.TrimSpace(raw)
	b = append(b, `{"from":"`...)
	b = append(b, uuid...) // uuids are [A-Za-z0-9_-]: no escaping
	b = append(b, '"')
	if rest := bytes.TrimSpace(raw[1:]); len(rest) > 1 {
		b = append(b, ',')
		b = append(b, rest...)
	} else {
		b = append(b, '}')
	}
	return b
}
