package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)


// The game served over the public process contract (go-plugin gRPC, in
// process): typed start with the game's JSON config, assignment, the
// contract's error reasons, Watch events, results in the database.
func TestProcContract(t *testing.T) {
	ctx := context.Background()
	impl := sdk.NewProcess(&testGame{}, nil)
	t.Cleanup(impl.Shutdown)
	srv := impl.ProcServer()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		proc.PluginLifecycle: &proc.LifecyclePlugin{Impl: srv.Lifecycle},
		proc.PluginRooms:     &proc.RoomsPlugin{Impl: srv.Rooms},
	})
	t.Cleanup(func() { client.Close() })
	c, err := proc.Dispense(client, "test")
	if err != nil {
		t.Fatal(err)
	}
	room := sdktest.Spec(2)
	pr := proc.Room{ID: room.ID, Game: "test", Profile: "casual", Expires: room.Expires}
	for _, p := range room.Players {
		pr.Players = append(pr.Players, proc.Player{UUID: p.UUID, Username: p.Username, Score: p.Rating})
	}
	if _, err := c.Rooms.AssignRoom(ctx, pr); !errors.Is(err, proc.ErrNotStarted) {
		t.Fatalf("assign before start: %v", err)
	}
	dir := t.TempDir()
	req := proc.StartRequest{Kind: "test", Memcache: storetest.Addrs(t), StorePrefix: fmt.Sprintf("procsdk%d:", time.Now().UnixNano()),
		Secret: sdktest.Secret, DatabaseDSN: "sqlite:" + filepath.Join(dir, "arena.db"), OutboxDir: filepath.Join(dir, "outbox"),
		Game: &procpb.GameOptions{ConfigJson: []byte(`{"rejoin-grace":"5s","colour":"red"}`)}}
	bad := req
	bad.Game = &procpb.GameOptions{ConfigJson: []byte(`{"rejoin-grace":"forever"}`)}
	if _, err := c.Lifecycle.Start(ctx, bad); !errors.Is(err, proc.ErrBadOptions) {
		t.Fatalf("bad options: %v", err)
	}
	var started proc.Started
	for attempt := 0; attempt < 5; attempt++ {
		req.Port = sdktest.FreePort(t)
		if started, err = c.Lifecycle.Start(ctx, req); !errors.Is(err, proc.ErrPortInUse) {
			break
		}
	}
	if err != nil || started.Addr != fmt.Sprintf("127.0.0.1:%d", req.Port) || started.Pid == 0 {
		t.Fatalf("start: %+v %v", started, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := c.Lifecycle.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if load, err := c.Rooms.AssignRoom(ctx, pr); err != nil || load != 1 {
		t.Fatalf("assign: %d %v", load, err)
	}
	if _, err := c.Rooms.AssignRoom(ctx, pr); !errors.Is(err, proc.ErrRoomExists) {
		t.Fatalf("assign twice: %v", err)
	}
	if _, err := c.Rooms.Backfill(ctx, "nope", []proc.Player{{UUID: "x"}}); !errors.Is(err, proc.ErrUnknownRoom) {
		t.Fatalf("backfill unknown: %v", err)
	}
	if st, err := c.Lifecycle.Status(ctx); err != nil || st.Load != 1 || len(st.Rooms) != 1 || st.Rooms[0] != room.ID {
		t.Fatalf("status %+v %v", st, err)
	}
	// Two players play; player 1 wins.
	signer, _ := auth.NewSigner(sdktest.Secret)
	env := &sdktest.Env{T: t, Signer: signer, URL: "ws://" + started.Addr + "/ws"}
	a := env.Join(room, 0)
	a.Expect("joined")
	a.SendJSON(map[string]any{"type": "end", "rank": []string{room.Players[1].UUID, room.Players[0].UUID}})
	res := a.Expect("result")
	if ps := res.List("players"); res["pending"] == true || ps[0].Num("new_score") != 1516 {
		t.Fatalf("result %v", res)
	}
	for ev := range events {
		if e, ok := ev.(proc.RoomEnded); ok {
			if e.Room != room.ID || e.Load != 0 || e.Reason != "decided" {
				t.Fatalf("room ended %+v", e)
			}
			break
		}
	}
	// The result is in the database, rated once.
	db, err := playerdb.Open(ctx, playerdb.Config{DSN: req.DatabaseDSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := db.Match(ctx, room.ID)
	if err != nil || m.Game != "test" || m.Profile != "casual" || m.Reason != "decided" || len(m.Players) != 2 ||
		m.Players[0].ID != room.Players[1].UUID || m.Players[0].After != 1516 {
		t.Fatalf("match in the database: %+v %v", m, err)
	}
}
