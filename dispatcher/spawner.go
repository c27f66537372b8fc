package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/proc"
)

// PluginSpawner runs fleet processes as go-plugin gRPC plugins: the arena
// binary itself with the kind as its subcommand (`arena fight`), through
// host.Spawn (parent-death signal, logs forwarded tagged KIND:PORT).
type PluginSpawner struct {
	// Exe is the binary to run (default: this executable).
	Exe string
	Log *slog.Logger
	// Env is extra environment for children (e.g. log level).
	Env []string
}

// Spawn implements Spawner.
func (s *PluginSpawner) Spawn(ctx context.Context, kind string, port int) (Handle, error) {
	exe := s.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("spawn %s: find executable: %w", kind, err)
		}
	}
	c, err := host.Spawn(ctx, host.SpawnConfig{Kind: kind, Command: host.Command{Path: exe, Args: []string{kind}},
		Tag: fmt.Sprintf("%s:%d", kind, port), Log: s.Log, Env: s.Env})
	if err != nil {
		return nil, err
	}
	return pluginHandle{c}, nil
}

type pluginHandle struct{ c *host.Child }

func (h pluginHandle) Client() proc.Client { return h.c.Client }
func (h pluginHandle) Pid() int            { return h.c.Pid }
func (h pluginHandle) Exited() bool        { return h.c.Exited() }
func (h pluginHandle) Kill()               { h.c.Kill() }
