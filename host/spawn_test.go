package host_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/internal/waitfor"
)

// TestFailedSpawnKillsTheWholeProcess: a game binary that is a wrapper
// script (no exec) whose child keeps the plugin's stdout open, and that
// fails the handshake, is refused at once and leaves nothing running. The
// host used to kill the script only and then wait, inside Spawn, until the
// child exited by itself (here 300 s; a daemon, never): the dispatcher's
// spawn, and the players waiting on it, hung that long.
func TestFailedSpawnKillsTheWholeProcess(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "wrapper")
	body := "#!/bin/sh\nsleep 300 &\necho $! > " + pidFile + "\necho 'hello, I am not a plugin'\nwait\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	type result struct {
		c   *host.Child
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := host.Spawn(context.Background(), host.SpawnConfig{Kind: "wrapper", Command: host.Command{Path: script}, Log: slog.New(slog.DiscardHandler)})
		done <- result{c, err}
	}()
	res := waitfor.Recv(t, done, "Spawn's answer for a wrapper that failed the handshake")
	if res.err == nil || !strings.Contains(res.err.Error(), "failed the handshake") {
		res.c.Kill()
		t.Fatalf("spawn: %v, want a failed handshake", res.err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	waitfor.Cond(t, "the wrapper's child gone", func() bool { return !alive(pid) })
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(after, "Z")
}
