package chatserver

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/internal/fleet"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/wsconn"
)

// buildArena builds the real arena binary for process-level tests.
func buildArena(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "arena")
	out, err := exec.Command("go", "build", "-o", exe, "../cmd/arena").CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "chat") {
			t.Fatalf("build arena: %v\n%s", err, out)
		}
		t.Skipf("the arena binary does not build (outside the chat server): %v\n%s", err, out)
	}
	return exe
}

// TestSpawnedByDispatcher runs `arena chat` as the dispatcher does: a
// go-plugin gRPC plugin, configured through Start.
func TestSpawnedByDispatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the arena binary")
	}
	exe := buildArena(t)
	spawn := func() (*plugin.Client, fleet.Process) {
		client := plugin.NewClient(&plugin.ClientConfig{
			HandshakeConfig:  fleet.Handshake,
			Plugins:          fleet.PluginMap,
			Cmd:              exec.Command(exe, "chat"),
			AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
			Logger:           hclog.NewNullLogger(),
			StartTimeout:     20 * time.Second,
		})
		t.Cleanup(client.Kill)
		rpc, err := client.Client()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := rpc.Dispense(fleet.PluginName)
		if err != nil {
			t.Fatal(err)
		}
		return client, raw.(fleet.Process)
	}
	_, p := spawn()
	ctx, cancel := ctx5()
	defer cancel()
	cfg := fleet.StartConfig{
		Kind: Kind, Host: "127.0.0.1", Memcache: storetest.Addrs(t), StorePrefix: "plugintest.",
		Secret: testSecret, Options: map[string]string{"operator-token": testOperator},
	}
	// A port found free can be taken by a parallel test process before
	// the chat server binds it: try another.
	var addr string
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		cfg.Port = freePort(t)
		if addr, err = p.Start(ctx, cfg); !errors.Is(err, fleet.ErrPortInUse) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	// Port taken: the error crosses gRPC as ErrPortInUse.
	_, p2 := spawn()
	if _, err := p2.Start(ctx, cfg); !errors.Is(err, fleet.ErrPortInUse) {
		t.Fatalf("second start: %v", err)
	}
	if _, err := p.AssignRoom(ctx, fleet.Room{ID: "r"}); err == nil {
		t.Fatal("a chat server accepted a room")
	}

	e := &testEnv{t: t, url: "ws://" + addr + "/ws"}
	e.signer, _ = newSignerForTest()
	a := e.dial("alice", "&operator="+testOperator)
	b := e.dial("bob", "")
	a.sendJSON(map[string]string{"type": "post", "channel": "announce", "text": "spawned"})
	b.expect("message", func(m msg) bool { return m.str("text") == "spawned" })
	st, err := p.Status(ctx)
	if err != nil || st.Load != 2 || st.Connections != 2 {
		t.Fatalf("status %+v %v", st, err)
	}
	left, err := p.Drain(ctx, time.Now().Add(5*time.Second))
	if err != nil || left != 0 {
		t.Fatalf("drain: %d %v", left, err)
	}
	if code := b.waitClosed(); code != wsconn.CloseGoingAway {
		t.Fatalf("close code %d", code)
	}
}
