package fightserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/arena-game/arena/sdk"
)

// A fight saves its state (sdk Room.Save) so that it survives its
// process: when the process dies, the dispatcher places the room again on
// another fight process, which restores it (Restore), and the players
// reconnect and play on with their hp and positions. It saves at once
// when a player first joins and when hp, an out, a quit or a backfill
// changes the fight, and every Rules.SnapshotEvery (default 1 s) when
// only positions (moves, blinks, rejoins) changed. See docs/fight.md "A room that survives its
// process" for what it costs.

// snapFighter is one member in a snapshot: its position now and where it
// walks, to a tenth of a unit.
type snapFighter struct {
	UUID   string  `json:"u"`
	HP     int     `json:"hp"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	TX     float64 `json:"tx"`
	TY     float64 `json:"ty"`
	Joined bool    `json:"j,omitempty"`
	Out    bool    `json:"o,omitempty"`
	Left   bool    `json:"l,omitempty"`
	OutSeq int     `json:"s,omitempty"`
	// What is left of its attack, blink and move cooldowns, in ms (0:
	// none running).
	AttackCD int64 `json:"ca,omitempty"`
	BlinkCD  int64 `json:"cb,omitempty"`
	MoveCD   int64 `json:"cm,omitempty"`
}

// cooldownLeft is what is left at now of a cooldown last started at
// last, in ms (0: none running).
func cooldownLeft(last, now time.Time, cooldown time.Duration) int64 {
	if last.IsZero() || cooldown <= 0 {
		return 0
	}
	return max(0, (cooldown - now.Sub(last)).Milliseconds())
}

// cooldownStart is when a cooldown with left ms remaining at now started.
func cooldownStart(left int64, now time.Time, cooldown time.Duration) time.Time {
	if left <= 0 || cooldown <= 0 {
		return time.Time{}
	}
	return now.Add(time.Duration(min(left, cooldown.Milliseconds()))*time.Millisecond - cooldown)
}

// snapshot is what a fight saves.
type snapshot struct {
	Fighters []snapFighter `json:"f"`
	OutSeq   int           `json:"s,omitempty"`
	Lost     int           `json:"l,omitempty"`
}

var (
	_ sdk.Snapshotter = (*fight)(nil)
	_ sdk.Restorer    = (*fight)(nil)
)

func tenth(v float64) float64 { return math.Round(v*10) / 10 }

// Snapshot implements sdk.Snapshotter: every member's hp, position,
// walking target, standing in the fight and what is left of its
// cooldowns (a restored fighter waits them out).
func (f *fight) Snapshot() ([]byte, error) {
	now := time.Now()
	s := snapshot{Fighters: make([]snapFighter, 0, len(f.fs)), OutSeq: f.outSeq, Lost: f.lost}
	for _, m := range f.fs {
		x, y := m.pos(now, f.rules.MoveSpeed)
		s.Fighters = append(s.Fighters, snapFighter{UUID: m.p.UUID, HP: m.hp, X: tenth(x), Y: tenth(y), TX: tenth(m.tx), TY: tenth(m.ty),
			Joined: m.joined, Out: m.out, Left: m.left, OutSeq: m.outSeq,
			AttackCD: cooldownLeft(m.lastAttack, now, f.rules.AttackCooldown),
			BlinkCD:  cooldownLeft(m.lastBlink, now, f.rules.BlinkCooldown),
			MoveCD:   cooldownLeft(m.lastMove, now, f.rules.MoveCooldown)})
	}
	return json.Marshal(s)
}

// errOtherRoom: a snapshot that names none of the room's members.
var errOtherRoom = errors.New("the snapshot is of another room")

// Restore implements sdk.Restorer: each member named in the snapshot
// gets its hp, standing, cooldowns and position back, walking on toward
// its target from now; a member the snapshot does not name (none should be missing:
// the room record and the snapshot list the same players) starts afresh.
func (f *fight) Restore(data []byte) error {
	var s snapshot
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("restore fight: %w", err)
	}
	byUUID := make(map[string]*snapFighter, len(s.Fighters))
	for i := range s.Fighters {
		byUUID[s.Fighters[i].UUID] = &s.Fighters[i]
	}
	now := time.Now()
	found := 0
	for _, m := range f.fs {
		sf := byUUID[m.p.UUID]
		if sf == nil {
			continue
		}
		found++
		m.hp = min(max(sf.HP, 0), StartHP)
		m.joined, m.out, m.left, m.outSeq = sf.Joined, sf.Out, sf.Left, sf.OutSeq
		m.place(clampX(sf.X), clampY(sf.Y), now)
		m.tx, m.ty = clampX(sf.TX), clampY(sf.TY)
		m.lastAttack = cooldownStart(sf.AttackCD, now, f.rules.AttackCooldown)
		m.lastBlink = cooldownStart(sf.BlinkCD, now, f.rules.BlinkCooldown)
		m.lastMove = cooldownStart(sf.MoveCD, now, f.rules.MoveCooldown)
	}
	if found == 0 {
		return fmt.Errorf("restore fight: %w", errOtherRoom)
	}
	f.outSeq, f.lost = s.OutSeq, max(0, s.Lost)
	return nil
}

// changed records a change of the fight's state: at once (save now) for
// first joins, hp, outs, quits and backfills, else by the next periodic
// save.
func (f *fight) changed(now bool) {
	if f.r.Ended() || f.rules.SnapshotEvery < 0 {
		return
	}
	if !now {
		f.dirty = true
		return
	}
	f.save()
}

func (f *fight) save() {
	f.dirty = false
	if err := f.r.Save(); errors.Is(err, sdk.ErrNoSnapshot) {
		f.rules.SnapshotEvery = -1 // no store: this room never saves
	}
}

// saveEvery arms the periodic save of a room whose positions changed.
func (f *fight) saveEvery() {
	if f.rules.SnapshotEvery <= 0 {
		return
	}
	f.r.After(f.rules.SnapshotEvery, func() {
		if f.dirty && !f.r.Ended() {
			f.save()
		}
		f.saveEvery()
	})
}
