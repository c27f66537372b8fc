package pygame

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
)

// python is Debian's interpreter, which has python3-grpcio and
// python3-protobuf (.ci/run installs them).
const python = "/usr/bin/python3"

func TestDescriptorUpToDate(t *testing.T) {
	want, err := DescriptorSet()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE") == "1" {
		if err := os.WriteFile("proc_descriptor.bin", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("proc_descriptor.bin")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("proc_descriptor.bin is stale (%v): run UPDATE=1 go test ./examples/pygame -run TestDescriptorUpToDate", err)
	}
}

func needPython(t *testing.T) {
	if err := exec.Command(python, "-c", "import grpc, google.protobuf").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s with grpc and protobuf is needed (apt-get install python3-grpcio python3-protobuf): %v", python, err)
		}
		t.Skipf("no %s with grpc and protobuf: %v", python, err)
	}
}

// The Python server, spawned like any game binary through go-plugin with
// the process contract's handshake, starts, takes a room, refuses it twice
// with the contract's reason, ends it and reports the end over Watch.
func TestPythonServerSpeaksTheContract(t *testing.T) {
	needPython(t)
	ctx := context.Background()
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  proc.Handshake,
		Plugins:          proc.PluginMap,
		Cmd:              exec.Command(python, "server.py"),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		StartTimeout:     20 * time.Second,
	})
	t.Cleanup(client.Kill)
	rpc, err := client.Client()
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if err := rpc.Ping(); err != nil {
		t.Fatalf("health: %v", err)
	}
	c, err := proc.Dispense(rpc, "pygame")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rooms.AssignRoom(ctx, proc.Room{ID: "early"}); !errors.Is(err, proc.ErrNotStarted) {
		t.Fatalf("assign before start: %v", err)
	}
	started, err := c.Lifecycle.Start(ctx, proc.StartRequest{Kind: "pygame", Port: 0, Game: &procpb.GameOptions{ConfigJson: []byte(`{"room_seconds":0.3}`)}})
	if err != nil || !strings.HasPrefix(started.Addr, "127.0.0.1:") || started.Pid == 0 {
		t.Fatalf("start: %+v %v", started, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := c.Lifecycle.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	room := proc.Room{ID: "py1", Game: "pygame", Players: []proc.Player{{UUID: "a"}, {UUID: "b"}}, Expires: time.Now().Add(time.Minute)}
	if load, err := c.Rooms.AssignRoom(ctx, room); err != nil || load != 1 {
		t.Fatalf("assign: %d %v", load, err)
	}
	if _, err := c.Rooms.AssignRoom(ctx, room); !errors.Is(err, proc.ErrRoomExists) {
		t.Fatalf("assign twice: %v (reason %q)", err, proc.Reason(err))
	}
	if _, err := c.Rooms.Backfill(ctx, "nope", []proc.Player{{UUID: "c"}}); !errors.Is(err, proc.ErrUnknownRoom) {
		t.Fatalf("backfill unknown room: %v", err)
	}
	if st, err := c.Lifecycle.Status(ctx); err != nil || st.Load != 1 || len(st.Rooms) != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	deadline := time.After(waitfor.Deadline())
	for ended := false; !ended; {
		select {
		case ev := <-events:
			if e, ok := ev.(proc.RoomEnded); ok {
				if e.Room != "py1" || e.Load != 0 || e.Reason != "done" {
					t.Fatalf("room ended %+v", e)
				}
				ended = true
			}
		case <-deadline:
			t.Fatal("no RoomEnded event")
		}
	}
	if n, err := c.Lifecycle.Drain(ctx, time.Now().Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("drain: %d %v", n, err)
	}
	if _, err := c.Rooms.AssignRoom(ctx, proc.Room{ID: "late"}); !errors.Is(err, proc.ErrDraining) {
		t.Fatalf("assign while draining: %v", err)
	}
}

// Started by hand (no handshake cookie), the server says what it is and exits.
func TestPythonServerRefusesAManualStart(t *testing.T) {
	needPython(t)
	cmd := exec.Command(python, "server.py")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "arena host starts it") {
		t.Fatalf("manual start: %v %s", err, out)
	}
}
