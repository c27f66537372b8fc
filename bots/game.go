package bots

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// The fight arena as the play page draws it and bots walk it: a rectangle
// of ArenaW x ArenaH units. The fight server does not bound positions
// (only |coordinate| <= 100000); this is the clients' shared convention,
// documented in docs/web.md.
const (
	ArenaW = 800.0
	ArenaH = 600.0
	// margin keeps bots off the arena's edge.
	margin = 40.0
)

// Spawn returns the starting position of member i of n in a room, used
// by every client for a player who has not moved yet (the fight server
// reports such a player at 0,0): evenly spread on an ellipse around the
// arena's centre, in the order of the room's "state" message.
func Spawn(i, n int) (x, y float64) {
	if n <= 0 {
		n = 1
	}
	a := 2*math.Pi*float64(i)/float64(n) - math.Pi/2
	return math.Round(ArenaW/2 + 220*math.Cos(a)), math.Round(ArenaH/2 + 180*math.Sin(a))
}

// Fight server messages a bot reads (docs/fight.md). Unknown fields are
// ignored; unknown types are skipped.
type (
	statePlayer struct {
		UUID     string  `json:"uuid"`
		Username string  `json:"username"`
		HP       int     `json:"hp"`
		X        float64 `json:"x"`
		Y        float64 `json:"y"`
		Status   string  `json:"status"`
	}
	fightMsg struct {
		Type       string        `json:"type"`
		Room       string        `json:"room"`
		You        string        `json:"you"`
		CooldownMS int64         `json:"attack_cooldown_ms"`
		Players    []statePlayer `json:"players"`
		// create_player, hp, out, player_away, player_back, event
		UUID  string   `json:"uuid"`
		HP    *int     `json:"hp"`
		Event string   `json:"event"`
		TX    *float64 `json:"tx"`
		TY    *float64 `json:"ty"`
		// result
		Winner string `json:"winner"`
		Reason string `json:"reason"`
		// error
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	resultPlayer struct {
		UUID     string `json:"uuid"`
		OldScore int    `json:"old_score"`
		NewScore int    `json:"new_score"`
	}
	resultMsg struct {
		Winner  string         `json:"winner"`
		Reason  string         `json:"reason"`
		Players []resultPlayer `json:"players"`
	}
)

// fighter is what a bot knows about one member of its room.
type fighter struct {
	uuid   string
	x, y   float64
	hp     int
	joined bool
	out    bool
}

// Outcome is how a fight ended for a bot.
type Outcome struct {
	Room     string
	Won      bool
	Reason   string
	OldScore int
	NewScore int
}

// errFightClosed: the fight server closed the room connection with an
// error code (ticket refused, room over, server stopping).
var errFightClosed = errors.New("fight refused")

// game is a bot's view of one fight and its policy. It is owned by the
// bot's fight loop; it does no I/O: apply reads server messages, act
// returns the messages to send.
type game struct {
	me       string
	room     string
	players  map[string]*fighter
	order    []string
	cooldown time.Duration
	// nextAttack and nextMove pace the bot (see act).
	nextAttack, nextMove time.Time
	target               string
	rng                  *rand.Rand
	started              bool
	// attackLo and attackHi bound the bot's attack period (uniform in
	// [lo, hi]) while a person is alive in the room: slower than the
	// server's cooldown, so a person can win. With only bots left the bot
	// attacks at the cooldown, so bot-only rooms end quickly and the bots
	// are back in the queue for the next person.
	attackLo, attackHi time.Duration
	// bots are the members known to be bots (from the match message).
	bots map[string]bool
}

func newGame(me string, rng *rand.Rand, attackLo, attackHi time.Duration) *game {
	return &game{me: me, players: map[string]*fighter{}, rng: rng, attackLo: attackLo, attackHi: attackHi, bots: map[string]bool{}}
}

// humanAlive reports whether a member not known to be a bot is still in
// the fight (joined or about to join, not out).
func (g *game) humanAlive() bool {
	for id, f := range g.players {
		if id != g.me && !g.bots[id] && !f.out {
			return true
		}
	}
	return false
}

// apply updates the game with one server message. It returns a non-nil
// Outcome when the room ended, and an error when the server refused the
// bot (an error code that closes the connection). It never panics on any
// input: malformed messages are skipped.
func (g *game) apply(b []byte, now time.Time) (*Outcome, error) {
	var m fightMsg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, nil
	}
	switch m.Type {
	case "state":
		if m.You != "" {
			g.me = m.You
		}
		g.room = m.Room
		g.cooldown = time.Duration(max(0, min(m.CooldownMS, 60_000))) * time.Millisecond
		g.order = g.order[:0]
		n := len(m.Players)
		for i, p := range m.Players {
			if p.UUID == "" {
				continue
			}
			f := g.players[p.UUID]
			if f == nil {
				f = &fighter{uuid: p.UUID}
				g.players[p.UUID] = f
			}
			f.hp = p.HP
			f.x, f.y = p.X, p.Y
			if f.x == 0 && f.y == 0 {
				f.x, f.y = Spawn(i, n)
			}
			f.joined = p.Status == "playing" || p.Status == "away"
			f.out = p.Status == "out" || p.Status == "left" || p.HP <= 0
			g.order = append(g.order, p.UUID)
		}
		if me := g.players[g.me]; me != nil {
			me.joined = true
		}
		if !g.started {
			g.started = true
			// A first look around before acting, as a person would.
			first := g.attackPeriod()
			if !g.humanAlive() {
				first = time.Duration(300+g.rng.IntN(300)) * time.Millisecond
			}
			g.nextAttack = now.Add(first)
			g.nextMove = now.Add(time.Duration(200+g.rng.IntN(400)) * time.Millisecond)
		}
	case "create_player", "player_back":
		if f := g.players[m.UUID]; f != nil {
			f.joined = true
		} else if m.UUID != "" && len(g.players) < 64 {
			x, y := Spawn(len(g.order), len(g.order)+1)
			g.players[m.UUID] = &fighter{uuid: m.UUID, x: x, y: y, hp: 100, joined: true}
			g.order = append(g.order, m.UUID)
		}
	case "event":
		if f := g.players[m.UUID]; f != nil && (m.Event == "move_to" || m.Event == "blink") && m.TX != nil && m.TY != nil {
			f.x, f.y = *m.TX, *m.TY
		}
	case "hp":
		if f := g.players[m.UUID]; f != nil && m.HP != nil {
			f.hp = *m.HP
			if f.hp <= 0 {
				f.out = true
			}
		}
	case "out":
		if f := g.players[m.UUID]; f != nil {
			f.out = true
		}
	case "result":
		var r resultMsg
		_ = json.Unmarshal(b, &r)
		o := &Outcome{Room: g.room, Won: r.Winner != "" && r.Winner == g.me, Reason: r.Reason}
		for _, p := range r.Players {
			if p.UUID == g.me {
				o.OldScore, o.NewScore = p.OldScore, p.NewScore
			}
		}
		return o, nil
	case "error":
		switch m.Code {
		case "bad_ticket", "expired_ticket", "wrong_kind", "wrong_room", "not_member",
			"room_over", "left_room", "replaced", "rate_limited", "server_shutdown":
			return nil, fmt.Errorf("%w: %s: %s", errFightClosed, m.Code, clip(m.Message, 120))
		}
	}
	return nil, nil
}

func (g *game) attackPeriod() time.Duration {
	lo, hi := g.attackLo, g.attackHi
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(g.rng.Int64N(int64(hi-lo)))
}

// act returns the messages the bot sends now (possibly none): now and then
// a move_to near its target, and an attack on a living opponent once its
// attack period has passed (never faster than the server's cooldown).
func (g *game) act(now time.Time) [][]byte {
	me := g.players[g.me]
	if me == nil || me.out || !g.started {
		return nil
	}
	var out [][]byte
	t := g.players[g.target]
	if t == nil || t.out || !t.joined || g.rng.IntN(4) == 0 {
		t = g.pickTarget()
		if t != nil {
			g.target = t.uuid
		}
	}
	if !now.Before(g.nextMove) {
		g.nextMove = now.Add(time.Duration(600+g.rng.IntN(900)) * time.Millisecond)
		x, y := g.wander(me, t)
		me.x, me.y = x, y
		out = append(out, moveMsg(x, y))
	}
	if t != nil && !now.Before(g.nextAttack) {
		period := g.attackPeriod()
		if !g.humanAlive() {
			period = 0
		}
		g.nextAttack = now.Add(max(period, g.cooldown+50*time.Millisecond+time.Duration(g.rng.IntN(200))*time.Millisecond))
		out = append(out, attackMsg(me, t, "b"+strconv.FormatUint(g.rng.Uint64()>>16, 36)))
	}
	return out
}

// pickTarget returns a random living, joined opponent, or nil.
func (g *game) pickTarget() *fighter {
	var c []*fighter
	for _, id := range g.order {
		f := g.players[id]
		if f != nil && id != g.me && f.joined && !f.out {
			c = append(c, f)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[g.rng.IntN(len(c))]
}

// wander picks the next position: towards a point about 160 units from
// the target (or anywhere when there is none), with some jitter, inside
// the arena.
func (g *game) wander(me, t *fighter) (float64, float64) {
	var x, y float64
	if t != nil {
		a := g.rng.Float64() * 2 * math.Pi
		x, y = t.x+160*math.Cos(a), t.y+160*math.Sin(a)
	} else {
		x, y = me.x+g.rng.Float64()*200-100, me.y+g.rng.Float64()*200-100
	}
	return math.Round(clamp(x, margin, ArenaW-margin)), math.Round(clamp(y, margin, ArenaH-margin))
}

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

func moveMsg(x, y float64) []byte {
	b, _ := json.Marshal(struct {
		Type  string  `json:"type"`
		Event string  `json:"event"`
		TX    float64 `json:"tx"`
		TY    float64 `json:"ty"`
	}{"event", "move_to", x, y})
	return b
}

func attackMsg(me, t *fighter, ball string) []byte {
	angle := math.Atan2(t.y-me.y, t.x-me.x)
	b, _ := json.Marshal(struct {
		Type   string  `json:"type"`
		Event  string  `json:"event"`
		Target string  `json:"target"`
		Ball   string  `json:"ball_uuid"`
		X      float64 `json:"x"`
		Y      float64 `json:"y"`
		Angle  float64 `json:"angle"`
	}{"event", "attack", t.uuid, ball, me.x, me.y, math.Round(angle*1000) / 1000})
	return b
}

// clip shortens s to at most n bytes for logs and errors.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
