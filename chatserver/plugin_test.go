package chatserver

import (
	"context"
	"errors"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
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

// TestSpawnedByDispatcher runs `arena chat` as a host does: a
// go-plugin gRPC plugin, configured through Start.
func TestSpawnedByDispatcher(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the arena binary")
	}
	exe := buildArena(t)
	spawn := func() proc.Lifecycle {
		child, err := host.Spawn(context.Background(), host.SpawnConfig{Kind: proc.KindChat,
			Command: host.Command{Path: exe, Args: []string{"chat"}}, Tag: "chat", Log: slog.New(slog.DiscardHandler),
			StartTimeout: 20 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(child.Kill)
		return child.Client.Lifecycle
	}
	p := spawn()
	ctx, cancel := waitCtx()
	defer cancel()
	cfg := proc.StartRequest{
		Kind: Kind, BindHost: "127.0.0.1", Memcache: storetest.Addrs(t), StorePrefix: "plugintest.",
		Secret: testSecret, Chat: &procpb.ChatOptions{OperatorToken: testOperator},
	}
	// A port found free can be taken by a parallel test process before
	// the chat server binds it: try another.
	var addr string
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		cfg.Port = freePort(t)
		var st proc.Started
		if st, err = p.Start(ctx, cfg); !errors.Is(err, proc.ErrPortInUse) {
			addr = st.Addr
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	// Port taken: the error crosses gRPC as ErrPortInUse.
	p2 := spawn()
	if _, err := p2.Start(ctx, cfg); !errors.Is(err, proc.ErrPortInUse) {
		t.Fatalf("second start: %v", err)
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
