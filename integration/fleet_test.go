package integration

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/waitfor"
)

func stat(t *testing.T, line string) hostctl.Table {
	t.Helper()
	var tab hostctl.Table
	if err := json.Unmarshal([]byte(seed(t, line, "stat")), &tab); err != nil {
		t.Fatal(err)
	}
	return tab
}

func pidOf(tab hostctl.Table, port int) int {
	for _, p := range tab.Processes {
		if p.Port == port {
			return p.Pid
		}
	}
	return 0
}

// TestFleetDoneWhen is issue 2's acceptance test: a real dispatcher with
// MAXNUM 2, driven in the seed's style over raw TCP.
func TestFleetDoneWhen(t *testing.T) {
	a := startArena(t, "dispatcher", "--maxnum", "2", "--min-processes", "1")
	first := seed(t, a.Line, "get")
	if _, err := strconv.Atoi(first); err != nil {
		t.Fatalf("get = %q", first)
	}
	if !listening(first) {
		t.Fatalf("port %s from get does not listen", first)
	}
	resp, err := http.Get("http://127.0.0.1:" + first + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("fight /healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	for i := 0; i < 2; i++ {
		if got := seed(t, a.Line, "add|"+first+"|"+a.Token); got != "ok" {
			t.Fatalf("add = %q", got)
		}
	}
	second := seed(t, a.Line, "get")
	if second == first {
		t.Fatalf("get on a full fleet answered the full process %s", first)
	}
	if !listening(second) {
		t.Fatalf("new process %s does not listen", second)
	}
	if got := seed(t, a.Line, "del|"+first+"|"+a.Token); got != "ok" {
		t.Fatalf("del = %q", got)
	}
	tab := stat(t, a.Line)
	if len(tab.Processes) != 2 {
		t.Fatalf("stat: %+v", tab)
	}
	p2, _ := strconv.Atoi(second)
	victim := pidOf(tab, p2)
	if victim == 0 {
		t.Fatalf("no pid for %s in %+v", second, tab)
	}
	var pids []int
	for _, p := range tab.Processes {
		pids = append(pids, p.Pid)
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// PROTOCOL.md: within a second on an idle machine. The bound here is
	// loose (the race detector on a loaded machine slows the dispatcher,
	// the host and every stat call); it still fails a detection that
	// waits for a lease or an expiry.
	waitfor.Within(t, 10*time.Second, "killed process leaves the table", func() bool {
		return pidOf(stat(t, a.Line), p2) == 0
	})
	for i := 0; i < 20; i++ {
		if got := seed(t, a.Line, "get"); got == second {
			t.Fatalf("dead process's port %s answered", second)
		}
	}
	a.Stop()
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("fleet process %d still alive after the dispatcher stopped", pid)
		}
	}
	if out, _ := exec.Command("pgrep", "-f", arenaBin).Output(); strings.TrimSpace(string(out)) != "" {
		t.Errorf("arena processes left: %s", out)
	}
}

// TestChildrenExitWhenDispatcherKilled kills the dispatcher with -9: its
// fleet processes must notice and exit.
func TestChildrenExitWhenDispatcherKilled(t *testing.T) {
	a := startArena(t, "dispatcher", "--maxnum", "1", "--min-processes", "2")
	var tab hostctl.Table
	waitfor.Cond(t, "two fight processes", func() bool {
		tab = stat(t, a.Line)
		return len(tab.Processes) == 2
	})
	_ = a.cmd.Process.Kill()
	<-a.done
	for _, p := range tab.Processes {
		pid := p.Pid
		waitfor.Within(t, 10*time.Second, "child exits after dispatcher kill -9", func() bool { return !alive(pid) })
	}
}

// TestMaxnumWhileRunningAndFleetHTTP changes MAXNUM on the line protocol and
// reads the table over HTTP and with `arena status`.
func TestMaxnumWhileRunningAndFleetHTTP(t *testing.T) {
	a := startArena(t, "dispatcher", "--maxnum", "1")
	port := seed(t, a.Line, "get")
	if got := seed(t, a.Line, "add|"+port+"|"+a.Token); got != "ok" {
		t.Fatalf("add|%s = %q", port, got)
	}
	if got := seed(t, a.Line, "maxnum|5|"+a.Token); got != "ok" {
		t.Fatalf("maxnum = %q", got)
	}
	if got := seed(t, a.Line, "get"); got != port {
		t.Fatalf("after maxnum 5, get = %s, want %s (room left)", got, port)
	}
	if got := seed(t, a.Line, "maxnum|5|wrong"); got != "err|bad token" {
		t.Fatalf("maxnum with a wrong token = %q", got)
	}
	resp, err := http.Get("http://" + a.HTTP + "/v1/fleet")
	if err != nil {
		t.Fatal(err)
	}
	var tab hostctl.Table
	_ = json.NewDecoder(resp.Body).Decode(&tab)
	resp.Body.Close()
	if tab.MaxNum != 5 || len(tab.Processes) != 1 || tab.Processes[0].Load != 1 {
		t.Fatalf("/v1/fleet = %+v", tab)
	}
	out, err := exec.Command(arenaBin, "status", "--url", "http://"+a.HTTP).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "fight") || !strings.Contains(string(out), port) {
		t.Fatalf("arena status: %v\n%s", err, out)
	}
	// The dispatcher saves its table to memcached within moments of a change.
	waitfor.Cond(t, "arena status --memcache shows the table", func() bool {
		out, err = exec.Command(arenaBin, "status", "--memcache", a.Memcache, "--store-prefix", a.Prefix).CombinedOutput()
		return err == nil && strings.Contains(string(out), port) && strings.Contains(string(out), "MAXNUM 5")
	})
	resp, err = http.Get("http://" + a.HTTP + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = ioCopy(body, resp)
	for _, want := range []string{"arena_fleet_processes", "arena_fleet_spawns_total", "arena_dispatch_get_seconds", "arena_fleet_load"} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestFleetProcessesRefuseManualStart: `arena fight` and `arena map` run
// only as the dispatcher's plugins; started by hand they explain and exit
// non-zero.
func TestFleetProcessesRefuseManualStart(t *testing.T) {
	for _, kind := range []string{"fight", "map"} {
		out, err := exec.Command(arenaBin, kind).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "dispatcher") {
			t.Fatalf("arena %s by hand: %v\n%s", kind, err, out)
		}
	}
}
