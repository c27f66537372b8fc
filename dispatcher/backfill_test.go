package dispatcher

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/sdk"
)

// A profile whose rooms take 4 players but start with 3 backfills the
// running room from the queue, through the fight process hosting it; a
// room that asks (BackfillWanted) gets a seat filled too.
func TestBackfillThroughTheFleet(t *testing.T) {
	file := filepath.Join(t.TempDir(), "profiles.yaml")
	if err := os.WriteFile(file, []byte(`profiles:
  - {name: default, min_players: 3, max_players: 4, params: {window_base: 100}}
  - {name: closed, params: {window_base: 100}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	td := newTestDispatcher(t, func(c *Config) { c.ProfilesFile = file })
	ctx := tctx(t)
	queue := func(name, profile string) (*wsconn.Client, string) {
		lr := td.login(t, name)
		cl := td.play(t, lr.Token)
		_ = cl.SendJSON(map[string]any{"type": "queue", "profile": profile})
		return cl, lr.UUID
	}
	matchAll := func(prefix, profile string) matchOut {
		var cls []*wsconn.Client
		for i := range 3 {
			cl, _ := queue(fmt.Sprintf("%s%d", prefix, i), profile)
			cls = append(cls, cl)
		}
		var m matchOut
		for _, cl := range cls {
			if err := cl.RecvType(ctx, "match", &m); err != nil {
				t.Fatal(err)
			}
		}
		return m
	}
	first := matchAll("bf", "default")
	late, lateID := queue("late", "default")
	var m matchOut
	if err := late.RecvType(ctx, "match", &m); err != nil {
		t.Fatal(err)
	}
	if m.Room != first.Room || len(m.Players) != 4 || m.Ticket == "" {
		t.Fatalf("backfilled into %+v, want room %s with 4 players", m, first.Room)
	}
	host := td.sp.Proc(0)
	joined := host.Joined()
	if len(joined) != 1 || joined[0] != first.Room+"/"+lateID {
		t.Fatalf("the fight process was asked %v", joined)
	}

	// A closed profile's room asks for one seat (a player left).
	closed := matchAll("cl", "closed")
	extra, _ := queue("extra", "closed")
	waitfor.Cond(t, "extra queued", func() bool { return td.mm.Stats().Queues["closed"] == 1 })
	host.Publish(proc.BackfillWanted{Room: closed.Room, Slots: 1})
	if err := extra.RecvType(ctx, "match", &m); err != nil || m.Room != closed.Room {
		t.Fatalf("extra: %+v %v", m, err)
	}
}

// A backfilled room's record lists its newcomers, so when its process
// dies and its game saved its state the room is placed again with them:
// every member, the newcomer too, gets a match for the same room.
func TestBackfilledRoomPlacedAgainWithItsNewcomers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "profiles.yaml")
	if err := os.WriteFile(file, []byte(`profiles:
  - {name: default, min_players: 3, max_players: 4, params: {window_base: 100}}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	td := newTestDispatcher(t, func(c *Config) { c.ProfilesFile = file })
	ctx := tctx(t)
	var cls []*wsconn.Client
	var ids []string
	for i := range 4 {
		lr := td.login(t, fmt.Sprintf("again%d", i))
		cl := td.play(t, lr.Token)
		_ = cl.SendJSON(map[string]any{"type": "queue"})
		if i == 2 {
			// The first three form the room; the fourth is backfilled.
			waitfor.Cond(t, "the room formed", func() bool { return td.mm.Stats().InRoom == 3 })
		}
		cls, ids = append(cls, cl), append(ids, lr.UUID)
	}
	var m matchOut
	for _, cl := range cls {
		if err := cl.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
	}
	room := m.Room
	rec, _, err := records.GetRoom(ctx, td.store, room)
	if err != nil || len(rec.Players) != 4 || rec.Players[3].UUID != ids[3] || rec.Players[3].HP != 100 {
		t.Fatalf("the room record after the backfill: %+v %v", rec, err)
	}
	// The game saved its state; its process dies.
	if err := td.store.Set(ctx, &store.Item{Key: sdk.SnapshotKey(room), Value: []byte(`{}`), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	for _, p := range td.sp.Procs() {
		if slices.Contains(p.Rooms(), room) {
			p.Exit()
		}
	}
	for i, cl := range cls {
		var again matchOut
		if err := cl.RecvType(ctx, "match", &again); err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if again.Room != room || len(again.Players) != 4 || again.Fight == m.Fight {
			t.Fatalf("member %d placed again: %+v (before: %s)", i, again, m.Fight)
		}
	}
}
