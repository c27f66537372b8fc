package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/arena-game/arena/proc"
)

// Command is how to run a process of one kind: a binary and its arguments
// (the arena binary itself with the kind as its subcommand, `arena fight`,
// or a game's own binary).
type Command struct {
	Path string
	Args []string
}

// SpawnConfig is one process to spawn.
type SpawnConfig struct {
	Kind    string
	Command Command
	// Tag names the child in forwarded log lines ("fight:7000").
	Tag string
	Log *slog.Logger
	// Env is extra environment (ARENA_LOG_LEVEL=...). The child inherits
	// the host's environment without any ARENA_ variable (tokens and
	// secrets travel only in Start), plus Env.
	Env []string
	// StartTimeout bounds the plugin handshake (default 10 s).
	StartTimeout time.Duration
}

// Child is a spawned process: its capabilities, its pid, and how to tell
// it exited and to stop it.
type Child struct {
	Client proc.Client
	Pid    int

	exited func() bool
	kill   func()
	once   sync.Once
}

// NewChild returns a Child of an in-process or otherwise started process
// (tests): exited reports whether it exited, kill stops it.
func NewChild(c proc.Client, pid int, exited func() bool, kill func()) *Child {
	return &Child{Client: c, Pid: pid, exited: exited, kill: kill}
}

// Exited reports whether the process has exited.
func (c *Child) Exited() bool { return c.exited() }

// Kill stops the process (go-plugin gives it 2 s after closing its
// connection, then SIGKILL; the rest of its process group is killed a
// second later if it still holds the process's output) and waits for it;
// safe to call twice.
func (c *Child) Kill() { c.once.Do(c.kill) }

// Spawn runs cfg.Command as a go-plugin gRPC plugin and dispenses its
// capabilities. The child gets SIGKILL when the host dies (Linux
// parent-death signal) and also exits by itself when its parent changes
// (proc.Serve), so none outlives its host. Its log lines are forwarded to
// cfg.Log tagged with cfg.Tag.
func Spawn(ctx context.Context, cfg SpawnConfig) (*Child, error) {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	cmd := exec.Command(cfg.Command.Path, cfg.Command.Args...)
	cmd.Env = append(childEnv(os.Environ()), cfg.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  proc.Handshake,
		Plugins:          proc.PluginMap,
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           HCLogToSlog(cfg.Log, cfg.Tag),
		StartTimeout:     cfg.StartTimeout,
	})
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			client.Kill()
		case <-done:
		}
	}()
	rpc, err := client.Client()
	if err != nil {
		// A wrapper script's children may hold the plugin's stdout open:
		// go-plugin's Kill would wait for them to exit by themselves.
		killGroup(cmd, client)
		client.Kill()
		if cfg.Log != nil {
			cfg.Log.Debug("spawn error", "kind", cfg.Kind, "err", err)
		}
		return nil, fmt.Errorf("spawn %s: %s", cfg.Kind, SpawnFailureReason(err))
	}
	kill := func() {
		// go-plugin closes the connection, gives the process 2 s, then
		// SIGKILLs it and waits for its output to end: the rest of its
		// process group (a wrapper script's children) goes too when
		// that takes longer.
		stop := make(chan struct{})
		go func() {
			select {
			case <-stop:
			case <-time.After(killGroupAfter):
				killGroup(cmd, client)
			}
		}()
		client.Kill()
		close(stop)
	}
	pc, err := proc.Dispense(rpc, cfg.Kind)
	if err != nil {
		kill()
		return nil, fmt.Errorf("spawn %s: %w", cfg.Kind, err)
	}
	pid := 0
	if rc := client.ReattachConfig(); rc != nil {
		pid = rc.Pid
	}
	return &Child{Client: pc, Pid: pid, exited: client.Exited, kill: kill}, nil
}

// killGroupAfter is how long Kill waits for go-plugin's own kill (2 s of
// grace, then SIGKILL of the process it started) before it SIGKILLs the
// whole process group.
const killGroupAfter = 3 * time.Second

// killGroup SIGKILLs the process group cmd leads (Spawn starts every child
// in a group of its own) unless client saw the leader exit. go-plugin
// reaps the leader only once its stdout and stderr have closed, so while
// any member holds them the group id cannot name another process.
func killGroup(cmd *exec.Cmd, client *plugin.Client) {
	if cmd.Process != nil && !client.Exited() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

// childEnv is env without ARENA_ variables: a child needs none of the
// host's flags, and some (the fleet token) are secrets.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "ARENA_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

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
