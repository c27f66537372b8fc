package fightserver

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
	"github.com/arena-game/arena/sdk"
)

// The server is authoritative about positions: attacks reach only so far,
// players walk at the move speed, blinks jump only so far and so often.

func TestAttackNeedsRange(t *testing.T) {
	// Two players spawn 360 units apart (400,120 and 400,480).
	e := newEnv(t, Config{Rules: Rules{AttackCooldown: -1, AttackRange: 100, MoveSpeed: 1e12}})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	countCreatePlayers(t, ca, 2)
	sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b","x":400,"y":470,"angle":0}`, r.Players[1].UUID)
	expectError(t, ca, CodeOutOfRange)
	// Walking next to the target (at a speed that arrives at once) puts it in range.
	send(t, ca, `{"type":"event","event":"move_to","tx":400,"ty":420}`)
	if m := expect(t, cb, "event"); m.str("event") != "move_to" {
		t.Fatalf("relayed %v", m)
	}
	sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b","x":0,"y":0,"angle":0}`, r.Players[1].UUID)
	if m := expect(t, cb, "event"); m.str("event") != "attack" || m.num("x") != 400 || m.num("y") != 420 {
		t.Fatalf("attack relayed from %v, want the server's position 400,420", m)
	}
	if m := expect(t, cb, "hp"); m.num("hp") != StartHP-DefaultAttackDamage {
		t.Fatalf("hp %v", m)
	}
}

func TestMoveSpeedIsTheServers(t *testing.T) {
	// At 1 unit/s a player who asks to cross the arena has barely moved:
	// it is still out of range of its target however fast it claims to be.
	e := newEnv(t, Config{Rules: Rules{AttackCooldown: -1, AttackRange: 100, MoveSpeed: 1}})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	countCreatePlayers(t, ca, 2)
	send(t, ca, `{"type":"event","event":"move_to","tx":400,"ty":470}`)
	expect(t, cb, "event")
	sendf(t, ca, `{"type":"event","event":"attack","target":%q,"ball_uuid":"b","x":400,"y":470,"angle":0}`, r.Players[1].UUID)
	expectError(t, ca, CodeOutOfRange)
	// A rejoin's state shows where the server has it (near its spawn),
	// and where it walks to.
	cb.Close(1000, "")
	cb2 := e.dial(e.ticket(r, 1))
	st := expect(t, cb2, "state")
	pa := msg(st["players"].([]any)[0].(map[string]any))
	if pa.num("y") > 125 || pa.num("ty") != 470 {
		t.Fatalf("walker's state %v", pa)
	}
	// Moves are clamped to the arena.
	send(t, ca, `{"type":"event","event":"move_to","tx":-50,"ty":9000}`)
	if m := expect(t, cb2, "event"); m.num("tx") != 0 || m.num("ty") != ArenaH {
		t.Fatalf("move not clamped: %v", m)
	}
}

func TestBlinkRangeAndCooldown(t *testing.T) {
	e := newEnv(t, Config{Rules: Rules{BlinkRange: 100, BlinkCooldown: time.Hour}})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	countCreatePlayers(t, ca, 2)
	send(t, ca, `{"type":"event","event":"blink","tx":400,"ty":400}`) // 280 from the spawn at 400,120
	expectError(t, ca, CodeTooFar)
	send(t, ca, `{"type":"event","event":"blink","tx":400,"ty":200}`)
	if m := expect(t, cb, "event"); m.str("event") != "blink" || m.num("ty") != 200 {
		t.Fatalf("blink %v", m)
	}
	send(t, ca, `{"type":"event","event":"blink","tx":400,"ty":250}`)
	expectError(t, ca, CodeCooldown)
}

func TestMoveCooldown(t *testing.T) {
	e := newEnv(t, Config{Rules: Rules{MoveCooldown: time.Hour}})
	r := e.newRoom(1500, 1500)
	ca, cb := e.join(r, 0), e.join(r, 1)
	countCreatePlayers(t, ca, 2)
	send(t, ca, `{"type":"event","event":"move_to","tx":10,"ty":10}`)
	expect(t, cb, "event")
	send(t, ca, `{"type":"event","event":"move_to","tx":20,"ty":20}`)
	expectError(t, ca, CodeCooldown)
}

func TestRulesFromOptions(t *testing.T) {
	o := &procpb.FightOptions{}
	if err := proc.SetOptions(o, []string{OptAttackRange + "=120", OptMoveSpeed + "=300", OptBlinkRange + "=50",
		OptBlinkCooldown + "=0s", OptMoveCooldown + "=50ms", OptMaxPlayers + "=3"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := ConfigFromOptions(o)
	if err != nil || cfg.AttackRange != 120 || cfg.MoveSpeed != 300 || cfg.BlinkRange != 50 || cfg.BlinkCooldown >= 0 ||
		cfg.MoveCooldown != 50*time.Millisecond || cfg.MaxPlayers != 3 {
		t.Fatalf("%+v %v", cfg.Rules, err)
	}
	if err := proc.SetOption(&procpb.FightOptions{}, "colour", "red"); !errors.Is(err, proc.ErrBadOptions) {
		t.Errorf("an unknown option: %v", err)
	}
	for _, bad := range []*procpb.FightOptions{{AttackRange: proto.Float64(0)}, {BlinkCooldown: durationpb.New(-time.Second)},
		{MaxPlayers: proto.Int32(1)}, {MaxPlayers: proto.Int32(MaxPlayers + 1)}} {
		if _, err := ConfigFromOptions(bad); !errors.Is(err, proc.ErrBadOptions) {
			t.Errorf("%v accepted: %v", bad, err)
		}
	}
	// The game reads the same keys from its configuration.
	g := NewGame(Rules{})
	srv, err := sdk.New(g, sdk.Config{}, []byte(`{"attack-range":"42"}`), sdk.Deps{Signer: newEnv(t, Config{}).signer})
	if err != nil || g.Rules().AttackRange != 42 {
		t.Fatalf("setup: %v %+v", err, g.Rules())
	}
	_ = srv.Close()
}
