package fightserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

// savedFight reads room's snapshot from st (ok false: none).
func savedFight(t *testing.T, st store.Store, room string) (snapshot, bool) {
	t.Helper()
	it, err := st.Get(t.Context(), sdk.SnapshotKey(room))
	if isNotFound(err) {
		return snapshot{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var s snapshot
	if err := json.Unmarshal(it.Value, &s); err != nil {
		t.Fatalf("snapshot %q: %v", it.Value, err)
	}
	return s, true
}

func (s snapshot) fighter(uuid string) snapFighter {
	for _, f := range s.Fighters {
		if f.UUID == uuid {
			return f
		}
	}
	return snapFighter{}
}

// twoJoined is a process of game with a room of two whose players both
// joined (their state read).
func twoJoined(t *testing.T, game sdk.Game) (*sdktest.Env, sdk.RoomSpec, *sdktest.Client, *sdktest.Client) {
	t.Helper()
	env := sdktest.New(t, game, sdk.Config{Game: Name})
	room := env.Room(2)
	a, b := env.Join(room, 0), env.Join(room, 1)
	a.Expect("state")
	b.Expect("state")
	return env, room, a, b
}

func attackMsg(target string) string {
	return fmt.Sprintf(`{"type":"event","event":"attack","target":%q,"ball_uuid":"b","x":0,"y":0,"angle":0}`, target)
}

// TestFightSurvivesItsProcess: a fight saves its hp at once and its
// positions within snapshot-every; another process sharing the store,
// assigned the same room, restores both, and the fight ends there with
// the hp it had: two attacks before and three after take 100 hp.
func TestFightSurvivesItsProcess(t *testing.T) {
	rules := Rules{AttackCooldown: -1, AttackRange: 100000, MoveSpeed: 1000000, SnapshotEvery: 20 * time.Millisecond}
	game := NewGame(rules)
	first, room, a, b := twoJoined(t, game)
	ua, ub := room.Players[0].UUID, room.Players[1].UUID
	for range 2 {
		a.Send(attackMsg(ub))
		a.Expect("hp")
	}
	a.Send(`{"type":"event","event":"move_to","tx":123,"ty":456}`)
	b.Expect("event")
	waitfor.Cond(t, "the hp and the move are saved", func() bool {
		s, ok := savedFight(t, first.Store, room.ID)
		fa, fb := s.fighter(ua), s.fighter(ub)
		return ok && fb.HP == 60 && fa.X == 123 && fa.Y == 456 && fa.Joined && fb.Joined
	})
	a.Close(wsconn.CloseNormal, "")
	b.Close(wsconn.CloseNormal, "")

	// Another process is given the room (as the dispatcher does when the
	// first one dies) and restores it.
	second := sdktest.New(t, game, sdk.Config{Game: Name}, sdktest.Options{Store: first.Store})
	second.Assign(room)
	b2 := second.Join(room, 1)
	st := b2.Expect("state")
	for _, p := range st.List("players") {
		switch p.Str("uuid") {
		case ua:
			if p.Num("hp") != 100 || p.Num("x") != 123 || p.Num("y") != 456 {
				t.Fatalf("restored attacker %v", p)
			}
		case ub:
			if p.Num("hp") != 60 {
				t.Fatalf("restored victim %v", p)
			}
		}
	}
	a2 := second.Join(room, 0)
	a2.Expect("state")
	for i := range 3 {
		a2.Send(attackMsg(ub))
		if m := a2.Expect("hp"); m.Num("hp") != float64(40-20*i) {
			t.Fatalf("hp after the restore: %v", m)
		}
	}
	res := a2.Expect("result")
	if res.Str("winner") != ua || res.Str("reason") != ReasonLastStanding {
		t.Fatalf("result %v", res)
	}
	waitfor.Cond(t, "the ended room's snapshot is deleted", func() bool {
		_, ok := savedFight(t, first.Store, room.ID)
		return !ok
	})
	if _, games, wins, _ := second.Rating(ua); games != 1 || wins != 1 {
		t.Fatalf("winner's record: %d games, %d wins", games, wins)
	}
}

// TestFirstJoinSavesAtOnce: a room is saved as soon as its players join,
// not at the next periodic save (an hour away here), so a process killed
// right after the joins loses nothing.
func TestFirstJoinSavesAtOnce(t *testing.T) {
	env := sdktest.New(t, NewGame(Rules{SnapshotEvery: time.Hour}), sdk.Config{Game: Name})
	room := env.Room(2)
	a, b := env.Join(room, 0), env.Join(room, 1)
	a.Expect("state")
	b.Expect("state")
	waitfor.Cond(t, "both joins saved", func() bool {
		s, ok := savedFight(t, env.Store, room.ID)
		return ok && s.fighter(room.Players[0].UUID).Joined && s.fighter(room.Players[1].UUID).Joined
	})
}

// TestSnapshotEveryZeroNeverSaves: with snapshot-every 0 a fight saves
// nothing (its rooms fail with their process, as before); with the
// default the same room, stopped by its server's shutdown, leaves its
// last snapshot (a server that closed has finished its rooms' writes).
func TestSnapshotEveryZeroNeverSaves(t *testing.T) {
	off, err := parseRules(Rules{}, []byte(`{"snapshot-every":"0"}`))
	if err != nil || off.SnapshotEvery >= 0 {
		t.Fatalf("snapshot-every 0: %v %v", off.SnapshotEvery, err)
	}
	if _, err := parseRules(Rules{}, []byte(`{"snapshot-every":"2m"}`)); err == nil {
		t.Fatal("snapshot-every 2m accepted")
	}
	for _, rules := range []Rules{{}, off} {
		rules.AttackCooldown, rules.AttackRange = -1, 100000
		env := sdktest.New(t, NewGame(rules), sdk.Config{Game: Name})
		room := env.Room(3)
		a, b := env.Join(room, 0), env.Join(room, 1)
		a.Expect("state")
		b.Expect("state")
		a.Send(attackMsg(room.Players[1].UUID))
		b.Expect("hp")
		if err := env.Server.Close(); err != nil {
			t.Fatal(err)
		}
		s, saved := savedFight(t, env.Store, room.ID)
		if want := rules.SnapshotEvery >= 0; saved != want || saved && s.fighter(room.Players[1].UUID).HP != 80 {
			t.Fatalf("snapshot-every %v: saved %v (%+v), want %v", rules.SnapshotEvery, saved, s, want)
		}
	}
}

// TestRestoreRefusesAnotherRoomsSnapshot: a snapshot naming none of the
// room's members fails the assignment (BAD_ROOM) instead of starting a
// fight from the wrong state.
func TestRestoreRefusesAnotherRoomsSnapshot(t *testing.T) {
	env := sdktest.New(t, NewGame(Rules{}), sdk.Config{Game: Name})
	room := sdktest.Spec(2)
	other, _ := json.Marshal(snapshot{Fighters: []snapFighter{{UUID: "someone-else", HP: 10}}})
	if err := env.Store.Set(t.Context(), &store.Item{Key: sdk.SnapshotKey(room.ID), Value: other, TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Server.AssignRoom(t.Context(), room); !errors.Is(err, sdk.ErrBadRoom) {
		t.Fatalf("assign with another room's snapshot: %v", err)
	}
	if err := env.Store.Set(t.Context(), &store.Item{Key: sdk.SnapshotKey(room.ID), Value: []byte("{"), TTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Server.AssignRoom(t.Context(), room); !errors.Is(err, sdk.ErrBadRoom) {
		t.Fatalf("assign with a malformed snapshot: %v", err)
	}
}

// BenchmarkSnapshot: the cost of one save on the room's goroutine (the
// Snapshot call) for rooms of 3 and 16 fighters, and its size.
func BenchmarkSnapshot(b *testing.B) {
	for _, n := range []int{3, 16} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			f := &fight{rules: Rules{}.withDefaults()}
			now := time.Now()
			for i := range n {
				x, y := Spawn(i, n)
				m := &fighter{p: &sdk.Player{UUID: fmt.Sprintf("%08d-aaaa-4bbb-8ccc-%012d", i, i)}, hp: StartHP - 7*i, joined: true}
				m.place(x, y, now)
				m.tx, m.ty = ArenaW-x, ArenaH-y
				f.fs = append(f.fs, m)
			}
			var size int
			b.ReportAllocs()
			for b.Loop() {
				s, err := f.Snapshot()
				if err != nil {
					b.Fatal(err)
				}
				size = len(s)
			}
			b.ReportMetric(float64(size), "bytes/snapshot")
		})
	}
}

// BenchmarkSaveToMemcached: one whole save of a 3-fighter room as the
// SDK's saver makes it: the Snapshot call and the memcached set of its
// bytes, one after the other, to an embedded memcached on loopback (its
// server side runs in this process, on the same cores).
func BenchmarkSaveToMemcached(b *testing.B) {
	mc, err := store.StartEmbedded(0)
	if err != nil {
		b.Fatal(err)
	}
	defer mc.Close()
	st, err := store.NewMemcache(store.MemcacheConfig{Addrs: []string{mc.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	f := &fight{rules: Rules{}.withDefaults()}
	now := time.Now()
	for i := range 3 {
		x, y := Spawn(i, 3)
		m := &fighter{p: &sdk.Player{UUID: fmt.Sprintf("%08d-aaaa-4bbb-8ccc-%012d", i, i)}, hp: StartHP, joined: true}
		m.place(x, y, now)
		f.fs = append(f.fs, m)
	}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		s, err := f.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Set(ctx, &store.Item{Key: sdk.SnapshotKey("rbench"), Value: s, TTL: time.Minute}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRestoreKeepsCooldowns: a fighter that attacked just before its
// process died waits out the rest of its attack cooldown in the room
// restored elsewhere, instead of attacking again at once.
func TestRestoreKeepsCooldowns(t *testing.T) {
	rules := Rules{AttackCooldown: time.Hour, AttackRange: 100000, SnapshotEvery: time.Hour}
	game := NewGame(rules)
	first, room, a, b := twoJoined(t, game)
	ub := room.Players[1].UUID
	a.Send(attackMsg(ub))
	a.Expect("hp")
	waitfor.Cond(t, "the attack saved with its cooldown", func() bool {
		s, ok := savedFight(t, first.Store, room.ID)
		return ok && s.fighter(ub).HP == 80 && s.fighter(room.Players[0].UUID).AttackCD > 0
	})
	a.Close(wsconn.CloseNormal, "")
	b.Close(wsconn.CloseNormal, "")
	second := sdktest.New(t, game, sdk.Config{Game: Name}, sdktest.Options{Store: first.Store})
	second.Assign(room)
	a2 := second.Join(room, 0)
	a2.Expect("state")
	a2.Send(attackMsg(ub))
	if m := a2.Expect("error"); m.Str("code") != CodeCooldown {
		t.Fatalf("an attack at once after the restore: %v, want a cooldown error", m)
	}
}
