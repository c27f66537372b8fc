package dispatcher

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/proc"
)

// PluginSpawner runs fleet processes as go-plugin gRPC plugins: the arena
// binary itself with the kind as its subcommand (`arena fight`), or a
// game's own binary (--game NAME=PATH), through host.Spawn (parent-death
// signal, logs forwarded tagged KIND:PORT).
type PluginSpawner struct {
	// Exe is the binary to run (default: this executable).
	Exe string
	// Games are the game binaries by kind, run without arguments.
	Games map[string]string
	Log   *slog.Logger
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
	cmd := host.Command{Path: exe, Args: []string{kind}}
	if path, ok := s.Games[kind]; ok {
		cmd = host.Command{Path: path}
	}
	c, err := host.Spawn(ctx, host.SpawnConfig{Kind: kind, Command: cmd,
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

// SpawnFailureReason says in one line why a process could not be started,
// from go-plugin's error: a binary that speaks another version of the
// process contract, one that printed something else than the handshake,
// one that exited before it, or one that did not answer in time.
func SpawnFailureReason(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(strings.ToLower(msg), "incompatible api version"):
		v := ""
		if _, after, ok := strings.Cut(msg, "Plugin version: "); ok {
			v, _, _ = strings.Cut(after, ",")
		}
		return fmt.Sprintf("speaks version %s of the process contract; this host speaks %d", v, proc.Handshake.ProtocolVersion)
	case strings.Contains(msg, "Failed to read any lines from plugin's stdout"), strings.Contains(msg, "plugin exited before we could connect"):
		return "exited at once, before the go-plugin handshake"
	case strings.Contains(msg, "Unrecognized remote plugin message: "):
		_, after, _ := strings.Cut(msg, "Unrecognized remote plugin message: ")
		line, _, _ := strings.Cut(after, "\n")
		if len(line) > 80 {
			line = line[:80] + "..."
		}
		return fmt.Sprintf("failed the handshake: printed %q instead of the go-plugin handshake line", line)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return "did not answer the handshake in time"
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file"), strings.Contains(msg, "permission denied"):
		return "cannot be run: " + msg
	}
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
