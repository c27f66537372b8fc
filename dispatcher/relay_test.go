package dispatcher

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
)

// findPython returns a python3 that imports the modules named (Debian's
// first: python3-thrift installs there); in CI it must be there.
func findPython(t *testing.T, modules ...string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		if len(modules) == 0 || exec.Command(path, "-c", "import "+strings.Join(modules, ", ")).Run() == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("CI needs python3 with %v (.ci/run installs python3-thrift)", modules)
	}
	t.Skipf("no python3 with %v", modules)
	return ""
}

// The django-channels relay's own tests (its logic with stand-ins for the
// channel layer and the cache).
func TestDjangoRelayLogic(t *testing.T) {
	python := findPython(t)
	cmd := exec.Command(python, "-m", "unittest", "-v", "test_relay")
	cmd.Dir = "../examples/django-channels"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("python3 -m unittest test_relay: %v\n%s", err, out)
	}
}

// The relay follows a live dispatcher's assignment stream: three backend
// players matched give the seed's Django-side calls (three group_adds,
// the room cached with hp 100 for an hour, create_player for each).
func TestDjangoRelayAgainstArena(t *testing.T) {
	python := findPython(t)
	td := newTestDispatcher(t, nil)
	dir, _ := filepath.Abs("../examples/django-channels")
	cmd := exec.Command(python, "e2e_relay.py", td.base, tBackend, "3")
	cmd.Dir = dir
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan []any, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var call []any
			if json.Unmarshal(sc.Bytes(), &call) == nil {
				lines <- call
			}
		}
		close(lines)
	}()
	next := func() []any {
		select {
		case c, ok := <-lines:
			if !ok {
				t.Fatal("the relay stopped")
			}
			return c
		case <-time.After(waitfor.Deadline()):
			t.Fatalf("the relay said nothing in %v", waitfor.Deadline())
		}
		return nil
	}
	if c := next(); c[0] != "ready" {
		t.Fatalf("first line %v", c)
	}
	// Let the relay's stream subscribe before the players queue.
	td.waitSubscribers(t, 1)
	for _, id := range []string{"dj1", "dj2", "dj3"} {
		if code := td.call(t, "POST", "/v1/tickets", tBackend, map[string]any{"score": 1500, "uuid": id, "username": id, "channel_name": "specific." + id}, nil); code != 202 {
			t.Fatalf("add %s: %d", id, code)
		}
	}
	var calls [][]any
	for len(calls) < 7 {
		calls = append(calls, next())
	}
	kinds := []string{}
	for _, c := range calls {
		kinds = append(kinds, c[0].(string))
	}
	if strings.Join(kinds, ",") != "group_add,group_add,group_add,cache_set,group_send,group_send,group_send" {
		t.Fatalf("calls %v", calls)
	}
	group := calls[0][1].(string)
	if !strings.HasPrefix(group, "room-dj") || calls[3][1] != group || calls[3][3].(float64) != 3600 {
		t.Fatalf("cache_set %v", calls[3])
	}
	for _, p := range calls[3][2].([]any) {
		if p.(map[string]any)["hp"].(float64) != 100 {
			t.Fatalf("cached %v", calls[3][2])
		}
	}
	if m := calls[4][2].(map[string]any); m["event"] != "create_player" || m["type"] != "group_send_event" {
		t.Fatalf("group_send %v", calls[4])
	}
}
