// Package turns is a turn-based battle built on arena's game SDK, after
// the original design's rooms: three players, 100 hp each, one action per
// turn in a fixed order with a turn timer; a player whose timer runs out
// loses the turn. The last player standing wins. A seat left by a player
// who quits is offered to the queue (Room.WantPlayers) and a backfilled
// player takes it with full hp. Its binary is examples/turns/cmd/turns
// (sdk.Serve); it saves its state every turn, so a battle outlives its
// process.
package turns

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/arena-game/arena/sdk"
)

// Name is the game's kind in the fleet.
const Name = "turns"

// Rules of the battle.
const (
	StartHP      = 100
	AttackDamage = 25
	HealAmount   = 15
	// DefaultTurnTime is how long a player has for its action.
	DefaultTurnTime = 15 * time.Second
	// DefaultStartDelay is how long the first turn waits for everyone to
	// connect (it starts earlier once all are in).
	DefaultStartDelay = 5 * time.Second
	// Seats is how many players a battle holds at once: a seat left by a
	// player who quit is offered to the queue (backfill).
	Seats = 3
)

// Game is the turns game (an sdk.Game).
type Game struct {
	TurnTime   time.Duration
	StartDelay time.Duration
}

var (
	_ sdk.Game       = (*Game)(nil)
	_ sdk.Setupper   = (*Game)(nil)
	_ sdk.Namer      = (*Game)(nil)
	_ sdk.Backfiller = (*battle)(nil)
)

// Name implements sdk.Namer.
func (g *Game) Name() string { return Name }

// Setup reads "turn-time" and "start-delay" (Go durations) from the game's
// configuration.
func (g *Game) Setup(env sdk.Env) error {
	var cfg struct {
		TurnTime   string `json:"turn-time"`
		StartDelay string `json:"start-delay"`
	}
	if err := json.Unmarshal(env.Config, &cfg); err != nil {
		return fmt.Errorf("turns config: %w", err)
	}
	for _, f := range []struct {
		s   string
		dst *time.Duration
	}{{cfg.TurnTime, &g.TurnTime}, {cfg.StartDelay, &g.StartDelay}} {
		if f.s == "" {
			continue
		}
		d, err := time.ParseDuration(f.s)
		if err != nil || d < 10*time.Millisecond || d > time.Hour {
			return fmt.Errorf("turns config: %q is not a duration from 10ms to 1h", f.s)
		}
		*f.dst = d
	}
	return nil
}

// fighter is one player's state.
type fighter struct {
	p         *sdk.Player
	HP        int  `json:"hp"`
	Defending bool `json:"defending"`
	Out       bool `json:"out"`
	OutSeq    int  `json:"out_seq"`
}

// battle is one room (an sdk.Handler).
type battle struct {
	r        *sdk.Room
	turnTime time.Duration
	fs       []*fighter
	turn     int // index into fs of the player whose turn it is; -1 before the first
	round    int
	outSeq   int
	endsAt   time.Time
	timer    *sdk.Timer
	start    *sdk.Timer
}

// NewRoom implements sdk.Game.
func (g *Game) NewRoom(r *sdk.Room) (sdk.Handler, error) {
	b := &battle{r: r, turnTime: g.TurnTime, turn: -1}
	if b.turnTime <= 0 {
		b.turnTime = DefaultTurnTime
	}
	for _, p := range r.Players() {
		f := &fighter{p: p, HP: StartHP}
		p.Data = f
		b.fs = append(b.fs, f)
	}
	delay := g.StartDelay
	if delay <= 0 {
		delay = DefaultStartDelay
	}
	b.start = r.After(delay, b.begin)
	return b, nil
}

func fighterOf(p *sdk.Player) *fighter { return p.Data.(*fighter) }

// begin starts the first turn (once).
func (b *battle) begin() {
	if b.turn >= 0 {
		return
	}
	b.start.Stop()
	b.round = 0 // next() moves past the last seat into round 1
	b.turn = len(b.fs) - 1
	b.next()
}

// next passes the turn to the next player still in, or ends the battle.
func (b *battle) next() {
	b.timer.Stop()
	if b.checkEnd() {
		return
	}
	for {
		b.turn++
		if b.turn == len(b.fs) {
			b.turn, b.round = 0, b.round+1
		}
		if !b.fs[b.turn].Out {
			break
		}
	}
	f := b.fs[b.turn]
	f.Defending = false // a defence lasts until the defender's next turn
	b.endsAt = time.Now().Add(b.turnTime)
	b.timer = b.r.After(b.turnTime, b.timeout)
	_ = b.r.BroadcastJSON(map[string]any{"type": "turn", "uuid": f.p.UUID, "round": b.round, "ends_at": b.endsAt.UnixMilli(), "turn_ms": b.turnTime.Milliseconds()})
	_ = b.r.Save() // one snapshot per turn, so the battle survives its process
}

// timeout: the player whose turn it was loses the turn.
func (b *battle) timeout() {
	_ = b.r.BroadcastJSON(map[string]any{"type": "turn_timeout", "uuid": b.fs[b.turn].p.UUID, "round": b.round})
	b.next()
}

// Join sends the newcomer the state; when all players are in, the first
// turn starts.
func (b *battle) Join(p *sdk.Player, how sdk.JoinKind) {
	_ = b.r.Send(p, b.stateMsg(p))
	if how == sdk.JoinFirst {
		_ = b.r.BroadcastExcept(p, mustJSON(map[string]any{"type": "joined", "uuid": p.UUID, "username": p.Username}))
	}
	if b.turn < 0 {
		for _, o := range b.r.Players() {
			if o.State() == sdk.Pending {
				return
			}
		}
		b.begin()
	}
}

// Leave: a dropped player keeps its seat (its turns time out); one who
// quits or loses its seat is out.
func (b *battle) Leave(p *sdk.Player, why sdk.LeaveReason) {
	if why == sdk.LeaveAway {
		_ = b.r.BroadcastJSON(map[string]any{"type": "away", "uuid": p.UUID})
		return
	}
	f := fighterOf(p)
	if f.Out {
		return
	}
	b.knockOut(f, "left", "")
	if b.turn >= 0 && b.fs[b.turn] == f {
		b.next()
	} else {
		b.checkEnd()
	}
	if !b.r.Ended() {
		b.r.WantPlayers(Seats - b.in()) // offer the empty seat
	}
}

// in counts the players still in the battle.
func (b *battle) in() int {
	n := 0
	for _, f := range b.fs {
		if !f.Out {
			n++
		}
	}
	return n
}

// Backfill implements sdk.Backfiller: players join a running battle into
// seats left empty, with full hp, at the end of the turn order.
func (b *battle) Backfill(ps []*sdk.Player) error {
	if b.in()+len(ps) > Seats {
		return fmt.Errorf("turns: %d seats free, %d players", Seats-b.in(), len(ps))
	}
	for _, p := range ps {
		f := &fighter{p: p, HP: StartHP}
		p.Data = f
		b.fs = append(b.fs, f)
		_ = b.r.BroadcastJSON(map[string]any{"type": "seated", "uuid": p.UUID, "username": p.Username, "hp": StartHP})
	}
	_ = b.r.Save() // the newcomers are in the snapshot, as they are in the room's record
	return nil
}

// Message takes the player's action on its turn:
// {"type":"act","action":"attack","target":UUID}, {"action":"heal"},
// {"action":"defend"}.
func (b *battle) Message(p *sdk.Player, m sdk.Message) {
	if m.Type != "act" {
		b.r.Error(p, "unknown_type", "the turns game takes {\"type\":\"act\"}")
		return
	}
	var in struct {
		Action string `json:"action"`
		Target string `json:"target"`
	}
	if err := json.Unmarshal(m.Raw, &in); err != nil {
		b.r.Error(p, "bad_action", "an action is {\"type\":\"act\",\"action\":...}")
		return
	}
	f := fighterOf(p)
	switch {
	case f.Out:
		b.r.Error(p, "out", "you are out of the battle")
		return
	case b.turn < 0 || b.fs[b.turn] != f:
		b.r.Error(p, "not_your_turn", "wait for your turn")
		return
	}
	act := map[string]any{"type": "acted", "uuid": p.UUID, "action": in.Action, "round": b.round}
	switch in.Action {
	case "attack":
		tp := b.r.Player(in.Target)
		if tp == nil || tp == p || fighterOf(tp).Out {
			b.r.Error(p, "bad_target", "attack another player who is still in")
			return
		}
		t := fighterOf(tp)
		dmg := AttackDamage
		if t.Defending {
			dmg /= 2
		}
		dmg = min(dmg, t.HP)
		t.HP -= dmg
		act["target"], act["damage"], act["hp"] = tp.UUID, dmg, t.HP
		_ = b.r.BroadcastJSON(act)
		if t.HP == 0 {
			b.knockOut(t, "killed", p.UUID)
		}
	case "heal":
		healed := min(HealAmount, StartHP-f.HP)
		f.HP += healed
		act["healed"], act["hp"] = healed, f.HP
		_ = b.r.BroadcastJSON(act)
	case "defend":
		f.Defending = true
		_ = b.r.BroadcastJSON(act)
	default:
		b.r.Error(p, "bad_action", "actions are attack, heal and defend")
		return
	}
	b.next()
}

func (b *battle) knockOut(f *fighter, reason, by string) {
	b.outSeq++
	f.Out, f.OutSeq = true, b.outSeq
	msg := map[string]any{"type": "out", "uuid": f.p.UUID, "reason": reason}
	if by != "" {
		msg["by"] = by
	}
	_ = b.r.BroadcastJSON(msg)
}

// checkEnd ends the battle when at most one player is still in.
func (b *battle) checkEnd() bool {
	if b.in() <= 1 {
		b.r.End(b.result("last_standing"))
		return true
	}
	return false
}

// Timeout implements sdk.TimeoutHandler: most hp wins.
func (b *battle) Timeout() sdk.Result { return b.result(sdk.ReasonTimeout) }

// result ranks players: in before out, more hp first, later out first.
func (b *battle) result(reason string) sdk.Result {
	res := sdk.Result{Reason: reason}
	better := func(x, y *fighter) bool {
		if x.Out != y.Out {
			return !x.Out
		}
		if !x.Out {
			return x.HP > y.HP
		}
		return x.OutSeq > y.OutSeq
	}
	for _, f := range b.fs {
		rank := 1
		for _, o := range b.fs {
			if better(o, f) {
				rank++
			}
		}
		res.Players = append(res.Players, sdk.PlayerResult{UUID: f.p.UUID, Rank: rank, Score: float64(f.HP), Left: f.p.State() == sdk.Gone,
			Extra: map[string]any{"hp": f.HP}})
	}
	return res
}

type statePlayer struct {
	UUID      string `json:"uuid"`
	Username  string `json:"username"`
	Photo     string `json:"photo"`
	HP        int    `json:"hp"`
	Defending bool   `json:"defending"`
	Out       bool   `json:"out"`
	Status    string `json:"status"`
}

func (b *battle) stateMsg(me *sdk.Player) []byte {
	msg := struct {
		Type    string        `json:"type"`
		Room    string        `json:"room"`
		You     string        `json:"you"`
		Turn    string        `json:"turn"`
		Round   int           `json:"round"`
		EndsAt  int64         `json:"ends_at"`
		TurnMS  int64         `json:"turn_ms"`
		Players []statePlayer `json:"players"`
	}{Type: "state", Room: b.r.ID(), You: me.UUID, Round: b.round, TurnMS: b.turnTime.Milliseconds()}
	if b.turn >= 0 {
		msg.Turn, msg.EndsAt = b.fs[b.turn].p.UUID, b.endsAt.UnixMilli()
	}
	for _, f := range b.fs {
		msg.Players = append(msg.Players, statePlayer{f.p.UUID, f.p.Username, f.p.Photo, f.HP, f.Defending, f.Out, f.p.State().String()})
	}
	return mustJSON(msg)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// snapshot is what Save stores: every fighter, the turn and the round.
type snapshot struct {
	Fighters []*fighter `json:"fighters"`
	Turn     int        `json:"turn"`
	Round    int        `json:"round"`
	OutSeq   int        `json:"out_seq"`
}

// Snapshot implements sdk.Snapshotter.
func (b *battle) Snapshot() ([]byte, error) {
	return json.Marshal(snapshot{Fighters: b.fs, Turn: b.turn, Round: b.round, OutSeq: b.outSeq})
}

// Restore implements sdk.Restorer: the battle continues at the saved turn
// (with a fresh turn timer).
func (b *battle) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	if len(s.Fighters) != len(b.fs) || s.Turn >= len(b.fs) {
		return fmt.Errorf("restore: the snapshot is of another room")
	}
	for i, f := range s.Fighters {
		b.fs[i].HP, b.fs[i].Defending, b.fs[i].Out, b.fs[i].OutSeq = f.HP, f.Defending, f.Out, f.OutSeq
	}
	b.round, b.outSeq = s.Round, s.OutSeq
	if s.Turn >= 0 {
		b.start.Stop()
		b.turn = s.Turn
		b.endsAt = time.Now().Add(b.turnTime)
		b.timer = b.r.After(b.turnTime, b.timeout)
	}
	return nil
}
