package fightserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/arena-game/arena/sdk"
)

// End reasons (the "reason" of a result).
const (
	ReasonLastStanding = "last_standing" // one member left alive: the winner
	ReasonAbandoned    = "abandoned"     // every member left (no winner)
	ReasonTimeout      = sdk.ReasonTimeout
	ReasonNoShow       = sdk.ReasonNoShow
	ReasonShutdown     = sdk.ReasonShutdown
)

// fighter is one member's state in a fight, owned by the room goroutine.
type fighter struct {
	p *sdk.Player
	// Movement: the fighter walks from (fx, fy), where it was at t0,
	// toward (tx, ty) at the room's move speed.
	fx, fy, tx, ty float64
	t0             time.Time
	hp             int
	out, left      bool // out: at 0 hp; left: quit or lost its seat
	joined         bool
	outSeq         int
	lastAttack     time.Time
	lastMove       time.Time
	lastBlink      time.Time
}

func (f *fighter) alive() bool { return !f.out && !f.left }

// pos is where the fighter stands at now, walking at speed.
func (f *fighter) pos(now time.Time, speed float64) (float64, float64) {
	dx, dy := f.tx-f.fx, f.ty-f.fy
	dist := math.Hypot(dx, dy)
	if dist == 0 {
		return f.tx, f.ty
	}
	walked := speed * now.Sub(f.t0).Seconds()
	if walked >= dist {
		return f.tx, f.ty
	}
	k := walked / dist
	return f.fx + dx*k, f.fy + dy*k
}

// place stops the fighter at (x, y).
func (f *fighter) place(x, y float64, now time.Time) {
	f.fx, f.fy, f.tx, f.ty, f.t0 = x, y, x, y, now
}

func (f *fighter) status() string {
	switch {
	case f.out:
		return "out"
	case f.left:
		return "left"
	}
	switch f.p.State() {
	case sdk.Pending:
		return "pending"
	case sdk.Away:
		return "away"
	case sdk.Gone:
		return "left"
	}
	return "playing"
}

// Spawn is where member i of n starts: on an ellipse around the arena's
// centre (the page and the bots use the same formula).
func Spawn(i, n int) (x, y float64) {
	n = max(1, n)
	a := 2*math.Pi*float64(i)/float64(n) - math.Pi/2
	return math.Round(ArenaW/2 + 220*math.Cos(a)), math.Round(ArenaH/2 + 180*math.Sin(a))
}

func clampX(x float64) float64 { return min(max(x, 0), ArenaW) }
func clampY(y float64) float64 { return min(max(y, 0), ArenaH) }

// fight is one room's rules (an sdk.Handler and sdk.Backfiller).
type fight struct {
	r      *sdk.Room
	g      *Game
	rules  Rules
	fs     []*fighter
	outSeq int
	// lost counts the seats of players who left for good while alive and
	// that no backfilled player has taken yet: the seats the room asks
	// the queue for (Room.WantPlayers).
	lost int
	// dirty: positions changed since the last save (see snapshot.go).
	dirty bool
}

// NewRoom implements sdk.Game.
func (g *Game) NewRoom(r *sdk.Room) (sdk.Handler, error) {
	if n := len(r.Players()); n < MinPlayers || n > g.rules.MaxPlayers {
		return nil, perr(CodeBadEvent, "a fight has "+strconv.Itoa(MinPlayers)+" to "+strconv.Itoa(g.rules.MaxPlayers)+" players, not "+strconv.Itoa(n))
	}
	f := &fight{r: r, g: g, rules: g.rules}
	now := time.Now()
	ps := r.Players()
	for i, p := range ps {
		m := &fighter{p: p, hp: StartHP}
		x, y := Spawn(i, len(ps))
		m.place(x, y, now)
		p.Data = m
		f.fs = append(f.fs, m)
	}
	f.dirty = true // the first periodic save writes the room's start
	f.saveEvery()
	return f, nil
}

// Backfill implements sdk.Backfiller: players join the running fight
// with full hp, each at the spawn point farthest from the fighters alive
// (see spawnPoint), and take the seats of players who left. The others
// hear create_player when a newcomer connects, as for every first join.
// The fight refuses them all (the SDK answers ROOM_FULL) when its alive
// players and the newcomers would pass max-players, or when it has been
// played and no member alive is connected now (they all dropped: the room
// is dying, a newcomer would find nobody to fight). A room already over
// is refused by the SDK (UNKNOWN_ROOM).
func (f *fight) Backfill(ps []*sdk.Player) error {
	alive, playing, played := 0, 0, false
	for _, m := range f.fs {
		played = played || m.joined
		if m.alive() {
			alive++
			if m.p.Connected() {
				playing++
			}
		}
	}
	switch {
	case alive+len(ps) > f.rules.MaxPlayers:
		return fmt.Errorf("fight: %d players alive and %d joining is more than %d", alive, len(ps), f.rules.MaxPlayers)
	case played && playing == 0:
		return errors.New("fight: no player alive is connected")
	}
	now := time.Now()
	for _, p := range ps {
		m := &fighter{p: p, hp: StartHP}
		x, y := f.spawnPoint(now)
		m.place(x, y, now)
		p.Data = m
		f.fs = append(f.fs, m)
	}
	f.lost = max(0, f.lost-len(ps))
	f.changed(true)
	return nil
}

// spawnPoints are the places a backfilled player may start: 8 points on
// the spawn ellipse.
const spawnPoints = 8

// spawnPoint is where a backfilled player starts: of the spawnPoints
// points Spawn(i, spawnPoints), the one farthest from the nearest fighter
// alive (the first such point on a tie).
func (f *fight) spawnPoint(now time.Time) (float64, float64) {
	bx, by, best := 0.0, 0.0, -1.0
	for i := range spawnPoints {
		x, y := Spawn(i, spawnPoints)
		near := math.Inf(1)
		for _, o := range f.fs {
			if o.alive() {
				ox, oy := o.pos(now, f.rules.MoveSpeed)
				near = min(near, math.Hypot(ox-x, oy-y))
			}
		}
		if near > best {
			bx, by, best = x, y, near
		}
	}
	return bx, by
}

// createMsg is the create_player announcement of m: its identity and
// rating, and its hp and position now (so a client shows a player who
// joined a running fight as the server has it).
func (f *fight) createMsg(m *fighter, now time.Time) []byte {
	x, y := m.pos(now, f.rules.MoveSpeed)
	b, _ := json.Marshal(struct {
		Type     string  `json:"type"`
		UUID     string  `json:"uuid"`
		Username string  `json:"username"`
		Photo    string  `json:"photo"`
		Score    int     `json:"score"`
		HP       int     `json:"hp"`
		X        float64 `json:"x"`
		Y        float64 `json:"y"`
	}{"create_player", m.p.UUID, m.p.Username, m.p.Photo, m.p.Rating, m.hp, math.Round(x), math.Round(y)})
	return b
}

func fighterOf(p *sdk.Player) *fighter { return p.Data.(*fighter) }

// Join sends the newcomer the room's state and a create_player for every
// member who has joined and not left; the others hear create_player (a
// first join) or player_back (a rejoin).
func (f *fight) Join(p *sdk.Player, how sdk.JoinKind) {
	me := fighterOf(p)
	now := time.Now()
	_ = f.r.Send(p, f.stateMsg(me, how != sdk.JoinFirst, now))
	// A first join saves at once: from then on the room can be restored
	// (a room killed before anyone joined has nothing worth restoring).
	me.joined = true
	f.changed(how == sdk.JoinFirst)
	for _, o := range f.fs {
		if o.joined && !o.left {
			_ = f.r.Send(p, f.createMsg(o, now))
		}
	}
	switch how {
	case sdk.JoinFirst:
		_ = f.r.BroadcastExcept(p, f.createMsg(me, now))
	case sdk.JoinRejoin:
		_ = f.r.BroadcastExcept(p, playerMsg("player_back", p.UUID))
	}
}

// Leave: a drop is player_away (the seat is kept for the grace); quitting
// or losing the seat is out with reason "left", and a fight that goes on
// without the player asks the queue for as many players as it lost
// (Room.WantPlayers; see Backfill).
func (f *fight) Leave(p *sdk.Player, why sdk.LeaveReason) {
	me := fighterOf(p)
	if why == sdk.LeaveAway {
		b, _ := json.Marshal(struct {
			Type    string `json:"type"`
			UUID    string `json:"uuid"`
			GraceMS int64  `json:"grace_ms"`
		}{"player_away", p.UUID, f.r.Config().RejoinGrace.Milliseconds()})
		_ = f.r.Broadcast(b)
		return
	}
	if me.alive() {
		f.outSeq++
		f.markOut(me, true, "left", "", f.outSeq)
		f.evaluate()
		if !f.r.Ended() {
			f.lost++
			f.r.WantPlayers(f.lost)
		}
	} else {
		me.left = true
	}
	f.changed(true)
}

// Message applies one validated event (see Parse).
func (f *fight) Message(p *sdk.Player, m sdk.Message) {
	ev, ok := m.Value.(*event)
	if !ok {
		return
	}
	me := fighterOf(p)
	if !me.alive() && ev.kind != evMessage {
		f.r.Error(p, CodePlayerOut, "you are out; only message events are relayed")
		return
	}
	now := time.Now()
	rules := &f.rules
	switch ev.kind {
	case evMoveTo:
		if rules.MoveCooldown > 0 && !me.lastMove.IsZero() && now.Sub(me.lastMove) < rules.MoveCooldown {
			f.r.Error(p, CodeCooldown, "move cooldown is "+rules.MoveCooldown.String())
			return
		}
		x, y := me.pos(now, rules.MoveSpeed)
		me.fx, me.fy, me.t0 = x, y, now
		ev.tx, ev.ty = clampX(ev.tx), clampY(ev.ty)
		me.tx, me.ty = ev.tx, ev.ty
		me.lastMove = now
	case evBlink:
		if rules.BlinkCooldown > 0 && !me.lastBlink.IsZero() && now.Sub(me.lastBlink) < rules.BlinkCooldown {
			f.r.Error(p, CodeCooldown, "blink cooldown is "+rules.BlinkCooldown.String())
			return
		}
		x, y := me.pos(now, rules.MoveSpeed)
		ev.tx, ev.ty = clampX(ev.tx), clampY(ev.ty)
		if d := math.Hypot(ev.tx-x, ev.ty-y); d > rules.BlinkRange {
			f.r.Error(p, CodeTooFar, "a blink reaches "+strconv.FormatFloat(rules.BlinkRange, 'g', -1, 64)+" units; that is "+strconv.FormatFloat(math.Round(d), 'g', -1, 64))
			return
		}
		me.place(ev.tx, ev.ty, now)
		me.lastBlink = now
	case evAttack:
		if !f.attack(p, me, ev, now) {
			return
		}
		f.g.events[ev.kind].Inc()
		f.changed(true)
		return
	}
	f.g.events[ev.kind].Inc()
	f.relay(p, ev)
	if ev.kind == evMoveTo || ev.kind == evBlink {
		f.changed(false)
	}
}

func (f *fight) attack(p *sdk.Player, me *fighter, ev *event, now time.Time) bool {
	rules := &f.rules
	var t *fighter
	if tp := f.r.Player(ev.target); tp != nil {
		t = fighterOf(tp)
	}
	var e *protoError
	x, y := me.pos(now, rules.MoveSpeed)
	switch {
	case t == nil:
		e = perr(CodeBadTarget, "target is not a member of this room")
	case t == me:
		e = perr(CodeBadTarget, "cannot attack yourself")
	case !t.joined:
		e = perr(CodeBadTarget, "target has not joined")
	case !t.alive():
		e = perr(CodeBadTarget, "target is out")
	case rules.AttackCooldown > 0 && !me.lastAttack.IsZero() && now.Sub(me.lastAttack) < rules.AttackCooldown:
		e = perr(CodeCooldown, "attack cooldown is "+rules.AttackCooldown.String())
	}
	if e == nil {
		tx, ty := t.pos(now, rules.MoveSpeed)
		if d := math.Hypot(tx-x, ty-y); d > rules.AttackRange {
			e = perr(CodeOutOfRange, "the target is "+strconv.FormatFloat(math.Round(d), 'g', -1, 64)+" units away; an attack reaches "+strconv.FormatFloat(rules.AttackRange, 'g', -1, 64))
		}
	}
	if e != nil {
		f.r.Error(p, e.Code, e.Message)
		return false
	}
	me.lastAttack = now
	ev.x, ev.y = math.Round(x), math.Round(y) // where the attack came from, as the server sees it
	f.relay(p, ev)
	dmg := min(rules.AttackDamage, t.hp)
	t.hp -= dmg
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		UUID   string `json:"uuid"`
		HP     int    `json:"hp"`
		By     string `json:"by"`
		Damage int    `json:"damage"`
	}{"hp", t.p.UUID, t.hp, p.UUID, dmg})
	_ = f.r.Broadcast(b)
	if t.hp == 0 {
		f.outSeq++
		f.markOut(t, false, "killed", p.UUID, f.outSeq)
		f.evaluate()
	}
	return true
}

// relay sends ev, from p, to every other connected member.
func (f *fight) relay(p *sdk.Player, ev *event) {
	b := appendRelay(make([]byte, 0, 160), ev, p.UUID, p.Username)
	_ = f.r.BroadcastExcept(p, b)
}

func playerMsg(typ, uuid string) []byte {
	b, _ := json.Marshal(struct {
		Type string `json:"type"`
		UUID string `json:"uuid"`
	}{typ, uuid})
	return b
}

func (f *fight) markOut(m *fighter, left bool, reason, by string, seq int) {
	if left {
		m.left = true
	} else {
		m.out = true
	}
	m.outSeq = seq
	b, _ := json.Marshal(struct {
		Type   string `json:"type"`
		UUID   string `json:"uuid"`
		Reason string `json:"reason"`
		By     string `json:"by,omitempty"`
	}{"out", m.p.UUID, reason, by})
	_ = f.r.Broadcast(b)
}

// evaluate ends the room when at most one member is alive (unless nobody
// ever joined: the SDK ends that room as a no-show).
func (f *fight) evaluate() {
	alive, joined := 0, false
	for _, m := range f.fs {
		if m.alive() {
			alive++
		}
		joined = joined || m.joined
	}
	switch {
	case alive > 1 || !joined:
	case alive == 1:
		f.r.End(f.result(ReasonLastStanding))
	default:
		f.r.End(f.result(ReasonAbandoned))
	}
}

// Timeout implements sdk.TimeoutHandler: the alive member with the most
// hp wins; a tie at the top has no winner.
func (f *fight) Timeout() sdk.Result { return f.result(ReasonTimeout) }

// result ranks the members: alive before out, among the alive more hp
// first, among the out the later out first; equal ranks drew.
func (f *fight) result(reason string) sdk.Result {
	order := append([]*fighter(nil), f.fs...)
	better := func(a, b *fighter) bool {
		if a.alive() != b.alive() {
			return a.alive()
		}
		if a.alive() {
			return a.hp > b.hp
		}
		return a.outSeq > b.outSeq
	}
	sort.SliceStable(order, func(i, j int) bool { return better(order[i], order[j]) })
	res := sdk.Result{Reason: reason}
	rank := 1
	now := time.Now()
	for i, m := range order {
		if i > 0 && better(order[i-1], m) {
			rank = i + 1
		}
		x, y := m.pos(now, f.rules.MoveSpeed)
		res.Players = append(res.Players, sdk.PlayerResult{UUID: m.p.UUID, Rank: rank, Score: float64(m.hp), Left: m.left,
			Extra: map[string]any{"hp": m.hp, "x": math.Round(x), "y": math.Round(y)}})
	}
	return res
}

type statePlayer struct {
	UUID     string  `json:"uuid"`
	Username string  `json:"username"`
	Photo    string  `json:"photo"`
	HP       int     `json:"hp"`
	X        float64 `json:"x"`
	Y        float64 `json:"y"`
	TX       float64 `json:"tx"`
	TY       float64 `json:"ty"`
	Status   string  `json:"status"`
}

// stateMsg is the room's current state, as sent to m on (re)join.
func (f *fight) stateMsg(m *fighter, rejoin bool, now time.Time) []byte {
	rules := &f.rules
	msg := struct {
		Type            string        `json:"type"`
		Room            string        `json:"room"`
		You             string        `json:"you"`
		Rejoin          bool          `json:"rejoin"`
		EndsAt          int64         `json:"ends_at"`
		RejoinGraceMS   int64         `json:"rejoin_grace_ms"`
		Damage          int           `json:"attack_damage"`
		CooldownMS      int64         `json:"attack_cooldown_ms"`
		AttackRange     float64       `json:"attack_range"`
		MoveSpeed       float64       `json:"move_speed"`
		BlinkRange      float64       `json:"blink_range"`
		BlinkCooldownMS int64         `json:"blink_cooldown_ms"`
		Players         []statePlayer `json:"players"`
	}{
		Type: "state", Room: f.r.ID(), You: m.p.UUID, Rejoin: rejoin, EndsAt: f.r.Deadline().UnixMilli(),
		RejoinGraceMS: f.r.Config().RejoinGrace.Milliseconds(), Damage: rules.AttackDamage,
		CooldownMS: max(0, rules.AttackCooldown.Milliseconds()), AttackRange: rules.AttackRange,
		MoveSpeed: rules.MoveSpeed, BlinkRange: rules.BlinkRange, BlinkCooldownMS: max(0, rules.BlinkCooldown.Milliseconds()),
	}
	for _, o := range f.fs {
		x, y := o.pos(now, rules.MoveSpeed)
		msg.Players = append(msg.Players, statePlayer{o.p.UUID, o.p.Username, o.p.Photo, o.hp, math.Round(x), math.Round(y), o.tx, o.ty, o.status()})
	}
	b, _ := json.Marshal(msg)
	return b
}
