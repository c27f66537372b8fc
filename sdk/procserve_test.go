package sdk_test

import (
	"context"
	"encoding/json"
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

// setupGame is a game with a fixed name whose Setup refuses a colour it
// does not know.
type setupGame struct{ testGame }

func (*setupGame) Name() string { return "painter" }

func (*setupGame) Setup(env sdk.Env) error {
	var c struct {
		Colour string `json:"colour"`
	}
	if err := json.Unmarshal(env.Config, &c); err != nil {
		return err
	}
	if c.Colour != "" && c.Colour != "red" {
		return fmt.Errorf("colour %q: want red", c.Colour)
	}
	return nil
}

// dispenseGame serves game over the process contract in this process
// (go-plugin gRPC) and returns its client.
func dispenseGame(t *testing.T, game sdk.Game, kind string) proc.Client {
	t.Helper()
	impl := sdk.NewProcess(game, nil)
	t.Cleanup(impl.Shutdown)
	srv := impl.ProcServer()
	client, _ := plugin.TestPluginGRPCConn(t, false, map[string]plugin.Plugin{
		proc.PluginLifecycle: &proc.LifecyclePlugin{Impl: srv.Lifecycle},
		proc.PluginRooms:     &proc.RoomsPlugin{Impl: srv.Rooms},
	})
	t.Cleanup(func() { client.Close() })
	c, err := proc.Dispense(client, kind)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestStartConfigErrorsAreBadOptions: every start-up configuration error
// (the game's JSON, an SDK setting, what the game's Setup refuses, the
// request's own fields) comes back from Start over the wire as the
// contract's BAD_OPTIONS (a gRPC status with an ErrorInfo), not a generic
// error; and the process still starts with a good request afterwards.
func TestStartConfigErrorsAreBadOptions(t *testing.T) {
	ctx := context.Background()
	c := dispenseGame(t, &setupGame{}, "painter")
	dir := t.TempDir()
	good := proc.StartRequest{Kind: "painter", Memcache: storetest.Addrs(t), StorePrefix: fmt.Sprintf("badopts%d:", time.Now().UnixNano()),
		Secret: sdktest.Secret, Game: &procpb.GameOptions{ConfigJson: []byte(`{"colour":"red"}`)}}
	withConfig := func(js string) func(*proc.StartRequest) {
		return func(r *proc.StartRequest) { r.Game = &procpb.GameOptions{ConfigJson: []byte(js)} }
	}
	for _, tc := range []struct {
		name   string
		change func(*proc.StartRequest)
	}{
		{"config JSON not an object", withConfig(`[1,2]`)},
		{"config JSON broken", withConfig(`{"colour":`)},
		{"SDK setting out of range", withConfig(`{"inbox":0}`)},
		{"SDK duration not a duration", withConfig(`{"room-timeout":"soon"}`)},
		{"the game's Setup refuses a value", withConfig(`{"colour":"blue"}`)},
		{"another game's kind", func(r *proc.StartRequest) { r.Kind = "fight" }},
		{"no secret", func(r *proc.StartRequest) { r.Secret = "" }},
		{"no memcached", func(r *proc.StartRequest) { r.Memcache = nil }},
		{"port out of range", func(r *proc.StartRequest) { r.Port = 70000 }},
		{"database without an outbox", func(r *proc.StartRequest) { r.DatabaseDSN = "sqlite:" + filepath.Join(dir, "a.db") }},
		{"database DSN malformed", func(r *proc.StartRequest) {
			r.DatabaseDSN, r.OutboxDir = "sqlite:"+filepath.Join(dir, "a.db")+"?mode=ro", filepath.Join(dir, "outbox")
		}},
	} {
		req := good
		tc.change(&req)
		_, err := c.Lifecycle.Start(ctx, req)
		if !errors.Is(err, proc.ErrBadOptions) {
			t.Errorf("%s: Start answered %v, want BAD_OPTIONS", tc.name, err)
		}
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		good.Port = sdktest.FreePort(t)
		if _, err = c.Lifecycle.Start(ctx, good); !errors.Is(err, proc.ErrPortInUse) {
			break
		}
	}
	if err != nil {
		t.Fatalf("a good start after the refused ones: %v", err)
	}
}

// TestResultNamesAdvertisedHost: a process bound to one address and
// advertised under another (an arena host's --bind and --advertise)
// answers Start with the advertised host:port, and the match history
// names that address as the room's host, not the bound one.
func TestResultNamesAdvertisedHost(t *testing.T) {
	ctx := context.Background()
	c := dispenseGame(t, &testGame{}, "test")
	dir := t.TempDir()
	req := proc.StartRequest{Kind: "test", BindHost: "127.0.0.1", AdvertiseHost: "game1.arena.test",
		Memcache: storetest.Addrs(t), StorePrefix: fmt.Sprintf("advhost%d:", time.Now().UnixNano()), Secret: sdktest.Secret,
		DatabaseDSN: "sqlite:" + filepath.Join(dir, "arena.db"), OutboxDir: filepath.Join(dir, "outbox")}
	var started proc.Started
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		req.Port = sdktest.FreePort(t)
		if started, err = c.Lifecycle.Start(ctx, req); !errors.Is(err, proc.ErrPortInUse) {
			break
		}
	}
	want := fmt.Sprintf("game1.arena.test:%d", req.Port)
	if err != nil || started.Addr != want {
		t.Fatalf("start: %+v %v, want address %s", started, err, want)
	}
	room := sdktest.Spec(2)
	pr := proc.Room{ID: room.ID, Game: "test", Profile: "casual", Expires: room.Expires}
	for _, p := range room.Players {
		pr.Players = append(pr.Players, proc.Player{UUID: p.UUID, Username: p.Username, Score: p.Rating})
	}
	if _, err := c.Rooms.AssignRoom(ctx, pr); err != nil {
		t.Fatal(err)
	}
	signer, _ := auth.NewSigner(sdktest.Secret)
	env := &sdktest.Env{T: t, Signer: signer, URL: fmt.Sprintf("ws://127.0.0.1:%d/ws", req.Port)}
	a := env.Join(room, 0)
	a.Expect("joined")
	a.SendJSON(map[string]any{"type": "end", "rank": []string{room.Players[0].UUID, room.Players[1].UUID}})
	if res := a.Expect("result"); res["pending"] == true {
		t.Fatalf("result pending: %v", res)
	}
	db, err := playerdb.Open(ctx, playerdb.Config{DSN: req.DatabaseDSN})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m, err := db.Match(ctx, room.ID)
	if err != nil || m.Host != want {
		t.Fatalf("match history names host %q (%v), want %s", m.Host, err, want)
	}
}
