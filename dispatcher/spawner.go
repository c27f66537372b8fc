package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/internal/fleet"
)

// PluginSpawner runs fleet processes as go-plugin gRPC plugins: the arena
// binary itself with the kind as its subcommand (`arena fight`). Each
// child gets SIGKILL if the dispatcher dies (Pdeathsig), and also watches its
// parent, so none outlives the dispatcher. Children's log lines are
// forwarded to the dispatcher's logger tagged with kind and pid.
type PluginSpawner struct {
	// Exe is the binary to run (default: this executable).
	Exe string
	Log *slog.Logger
	// Env is extra environment for children (e.g. log level).
	Env []string
}

// Spawn implements Spawner.
func (s *PluginSpawner) Spawn(ctx context.Context, kind string) (Handle, error) {
	exe := s.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("spawn %s: find executable: %w", kind, err)
		}
	}
	cmd := exec.Command(exe, kind)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	tag := fleet.NewLogTag(kind)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  fleet.Handshake,
		Plugins:          fleet.PluginMap,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           fleet.HCLogToSlogTagged(s.Log, tag),
		StartTimeout:     10e9,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("spawn %s: %w", kind, err)
	}
	raw, err := rpc.Dispense(fleet.PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("spawn %s: dispense: %w", kind, err)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	return &pluginHandle{c: client, p: raw.(fleet.Process), pid: pid, tag: tag}, nil
}

type pluginHandle struct {
	c    *plugin.Client
	p    fleet.Process
	pid  int
	tag  *fleet.LogTag
	once sync.Once
}

// SetTag names the child in forwarded log lines ("fight:7000").
func (h *pluginHandle) SetTag(s string) { h.tag.Set(s) }

func (h *pluginHandle) Process() fleet.Process { return h.p }
func (h *pluginHandle) Pid() int               { return h.pid }
func (h *pluginHandle) Exited() bool           { return h.c.Exited() }
func (h *pluginHandle) Kill()                  { h.once.Do(h.c.Kill) }
