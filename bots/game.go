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

// The fight arena: a rectangle of ArenaW x ArenaH units. The fight server
// keeps every position inside it and moves players at its move speed
// (docs/fight.md); bots model the same movement to know when a target is
// within the attack range.
const (
	ArenaW = 800.0
	ArenaH = 600.0
	// margin keeps bots off the arena's edge.
	margin = 40.0
)

// Spawn returns the starting position of member i of n in a room (the
// fight server's fightserver.Spawn; clients use it for a player an older
// server reports at 0,0): evenly spread on an ellipse around the arena's
// centre, in the order of the room's "state" message.
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
		UUID     string   `json:"uuid"`
		Username string   `json:"username"`
		HP       int      `json:"hp"`
		X        float64  `json:"x"`
		Y        float64  `json:"y"`
		TX       *float64 `json:"tx"`
		TY       *float64 `json:"ty"`
		Status   string   `json:"status"`
	}
	fightMsg struct {
		Type       string        `json:"type"`
		Room       string        `json:"room"`
		You        string        `json:"you"`
		CooldownMS int64         `json:"attack_cooldown_ms"`
		Range      float64       `json:"attack_range"`
		Speed      float64       `json:"move_speed"`
		Players    []statePlayer `json:"players"`
		// create_player, hp, out, player_away, player_back, event
		UUID  string   `json:"uuid"`
		HP    *int     `json:"hp"`
		X     *float64 `json:"x"` // create_player: where the member stands
		Y     *float64 `json:"y"`
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

// fighter is what a bot knows about one member of its room: it walks from
// (fx, fy), where it was at t0, toward (tx, ty) at the room's speed, as
// the server moves it.
type fighter struct {
	uuid           string
	fx, fy, tx, ty float64
	t0             time.Time
	hp             int
	joined         bool
	out            bool
}

// pos is where f stands at now, walking at speed.
func (f *fighter) pos(now time.Time, speed float64) (float64, float64) {
	dx, dy := f.tx-f.fx, f.ty-f.fy
	dist := math.Hypot(dx, dy)
	walked := speed * now.Sub(f.t0).Seconds()
	if dist == 0 || walked >= dist {
		return f.tx, f.ty
	}
	return f.fx + dx*walked/dist, f.fy + dy*walked/dist
}

// walk starts f toward (x, y) from where it stands at now.
func (f *fighter) walk(x, y float64, now time.Time, speed float64) {
	f.fx, f.fy = f.pos(now, speed)
	f.tx, f.ty, f.t0 = clamp(x, 0, ArenaW), clamp(y, 0, ArenaH), now
}

// place puts f at (x, y).
func (f *fighter) place(x, y float64, now time.Time) {
	f.fx, f.fy, f.tx, f.ty, f.t0 = x, y, x, y, now
}

// Movement and reach when a server does not say (older fight servers had
// no range).
const (
	defaultSpeed = 240.0
	defaultRange = 1e9
)

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

// errRoomOver: the fight server refused the room because it has ended.
// It wraps errFightClosed.
var errRoomOver = fmt.Errorf("%w: room_over", errFightClosed)

// game is a bot's view of one fight and its policy. It is owned by the
// bot's fight loop; it does no I/O: apply reads server messages, act
// returns the messages to send.
type game struct {
	me       string
	room     string
	players  map[string]*fighter
	order    []string
	cooldown time.Duration
	// speed and reach are the room's move speed and attack range.
	speed, reach float64
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
	return &game{me: me, players: map[string]*fighter{}, rng: rng, attackLo: attackLo, attackHi: attackHi, bots: map[string]bool{},
		speed: defaultSpeed, reach: defaultRange}
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
		if m.Speed > 0 {
			g.speed = m.Speed
		}
		if m.Range > 0 {
			g.reach = m.Range
		}
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
			x, y := p.X, p.Y
			if x == 0 && y == 0 {
				x, y = Spawn(i, n)
			}
			f.place(x, y, now)
			if p.TX != nil && p.TY != nil {
				f.walk(*p.TX, *p.TY, now, g.speed)
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
			// A member the bot did not know: one backfilled into the
			// running fight, placed where the server says (an older
			// server: the next spawn point).
			x, y := Spawn(len(g.order), len(g.order)+1)
			if m.X != nil && m.Y != nil {
				x, y = clamp(*m.X, 0, ArenaW), clamp(*m.Y, 0, ArenaH)
			}
			f := &fighter{uuid: m.UUID, hp: 100, joined: true}
			if m.HP != nil {
				f.hp = *m.HP
			}
			f.place(x, y, now)
			g.players[m.UUID] = f
			g.order = append(g.order, m.UUID)
		}
	case "event":
		if f := g.players[m.UUID]; f != nil && m.TX != nil && m.TY != nil {
			switch m.Event {
			case "move_to":
				f.walk(*m.TX, *m.TY, now, g.speed)
			case "blink":
				f.place(*m.TX, *m.TY, now)
			}
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
		case "room_over":
			return nil, fmt.Errorf("%w: %s", errRoomOver, clip(m.Message, 120))
		case "bad_ticket", "expired_ticket", "wrong_kind", "wrong_room", "not_member",
			"left_room", "replaced", "rate_limited", "server_shutdown":
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
// attack period has passed (never faster than the server's cooldown) and
// the target is within reach; out of reach it walks toward it first.
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
		x, y := g.wander(me, t, now)
		me.walk(x, y, now, g.speed)
		out = append(out, moveMsg(x, y))
	}
	if t != nil && !now.Before(g.nextAttack) {
		mx, my := me.pos(now, g.speed)
		tx, ty := t.pos(now, g.speed)
		if d := math.Hypot(tx-mx, ty-my); d > g.reach*0.85 {
			// Out of reach: walk to half the reach from the target and
			// attack once there.
			if math.Hypot(me.tx-tx, me.ty-ty) > g.reach*0.6 {
				k := (d - g.reach*0.5) / d
				x, y := math.Round(mx+(tx-mx)*k), math.Round(my+(ty-my)*k)
				me.walk(x, y, now, g.speed)
				out = append(out, moveMsg(x, y))
				g.nextMove = now.Add(time.Duration(600+g.rng.IntN(900)) * time.Millisecond)
			}
			return out
		}
		period := g.attackPeriod()
		if !g.humanAlive() {
			period = 0
		}
		g.nextAttack = now.Add(max(period, g.cooldown+50*time.Millisecond+time.Duration(g.rng.IntN(200))*time.Millisecond))
		out = append(out, attackMsg(mx, my, tx, ty, t.uuid, "b"+strconv.FormatUint(g.rng.Uint64()>>16, 36)))
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
func (g *game) wander(me, t *fighter, now time.Time) (float64, float64) {
	var x, y float64
	if t != nil {
		a := g.rng.Float64() * 2 * math.Pi
		r := min(160, g.reach*0.5)
		tx, ty := t.pos(now, g.speed)
		x, y = tx+r*math.Cos(a), ty+r*math.Sin(a)
	} else {
		mx, my := me.pos(now, g.speed)
		x, y = mx+g.rng.Float64()*200-100, my+g.rng.Float64()*200-100
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

func attackMsg(mx, my, tx, ty float64, target, ball string) []byte {
	angle := math.Atan2(ty-my, tx-mx)
	b, _ := json.Marshal(struct {
		Type   string  `json:"type"`
		Event  string  `json:"event"`
		Target string  `json:"target"`
		Ball   string  `json:"ball_uuid"`
		X      float64 `json:"x"`
		Y      float64 `json:"y"`
		Angle  float64 `json:"angle"`
	}{"event", "attack", target, ball, math.Round(mx), math.Round(my), math.Round(angle*1000) / 1000})
	return b
}

// clip shortens s to at most n bytes for logs and errors.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
