package integration

import (
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/playerdb/dbtest"
	"github.com/arena-game/arena/results"
)

// TestHostDrainsOutboxWithNoProcess: a room on a remote `arena host` ends
// while PostgreSQL is unreachable, so its result stays in that host's
// outbox (a directory the dispatcher does not drain); the host's fight
// process is then killed and none is started again. When the database is
// back, the host itself applies the result, exactly once, with the
// database DSN the dispatcher sent it over host control (its password in
// no log and no process list).
func TestHostDrainsOutboxWithNoProcess(t *testing.T) {
	dsn := dbtest.DSN(t, dbtest.Postgres)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgHost := u.Host
	pg := newTCPProxy(t, pgHost)
	u.Host = pg.Addr()
	// PostgreSQL trusts the test's user: the password is there to be
	// looked for in logs.
	u.User = url.UserPassword(u.User.Username(), "pw-not-in-logs")
	hostPort := freePort(t)
	a := startArena(t, "dispatcher", "--local-host=false", "--host-listen", "127.0.0.1:"+strconv.Itoa(hostPort),
		"--guest-login", "--room-size", "2", "--tick", "100ms", "--min-processes", "0", "--min-map-processes", "0",
		"--idle-timeout", "1h", "--db", u.String())
	m := machine{name: "h1", rootIP: "127.0.0.1", ip: "127.0.0.2"}
	hostOutbox := t.TempDir()
	h := startHost(t, a, m, "127.0.0.1:"+strconv.Itoa(hostPort), a.Memcache, "--outbox", hostOutbox)
	waitfor.Cond(t, "the host connected", func() bool { return len(hostsIn(stat(t, a.Line), hostctl.HostConnected)) == 1 })

	ctx := ctxT(t, 120*time.Second)
	ann, bob := newGamer(t, ctx, a, "ann"), newGamer(t, ctx, a, "bob")
	if res := playRoom(t, ctx, ann, bob, nil); res.Pending {
		t.Fatal("pending with the database up")
	}
	var before profileView
	waitfor.Cond(t, "the first room in ann's record", func() bool { before = profileOf(t, a, ann.uuid); return before.Games == 1 })

	// The second room ends with the database gone: pending, in the host's outbox.
	res := playRoom(t, ctx, ann, bob, func() { pg.Retarget("127.0.0.1:1") })
	if !res.Pending {
		t.Fatalf("result with the database gone: %+v; want pending", res)
	}
	if n, err := results.Pending(hostOutbox); n != 1 {
		t.Fatalf("the host's outbox holds %d results (%v); want the pending one", n, err)
	}
	if n, err := results.Pending(a.Outbox); n != 0 || err != nil {
		t.Fatalf("the dispatcher's outbox holds %d results (%v): the test would not show the host's drain", n, err)
	}

	// No fight process on the host any more.
	fights := func() (pids []int) {
		for _, p := range processesOn(stat(t, a.Line), m.name) {
			if p.Kind == "fight" {
				pids = append(pids, p.Pid)
			}
		}
		return pids
	}
	pids := fights()
	if len(pids) == 0 {
		t.Fatal("no fight process on the host after two rooms")
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
	}
	waitfor.Cond(t, "the host's fight processes are gone", func() bool {
		for _, pid := range pids {
			if alive(pid) {
				return false
			}
		}
		return len(fights()) == 0
	})
	if n, err := results.Pending(hostOutbox); n != 1 {
		t.Fatalf("the result left the outbox while the database was away: %d pending (%v)", n, err)
	}

	// The database is back: the host applies the result, once.
	pg.Retarget(pgHost)
	waitfor.Cond(t, "the host applies the pending result", func() bool {
		n, err := results.Pending(hostOutbox)
		return err == nil && n == 0
	})
	// The dispatcher's own idle connections died with the outage: a read
	// may answer 503 until its pool has reconnected.
	var after profileView
	waitfor.Cond(t, "ann's record has both rooms", func() bool {
		after = profileView{}
		return api(t, a, "GET", "/v1/players/"+ann.uuid, "", nil, &after) == 200 && after.Games == 2
	})
	if after.Wins != 2 || after.Score <= before.Score {
		t.Fatalf("ann after the database came back: %+v (before %+v)", after, before)
	}
	var history struct{ Matches []struct{ Room string } }
	waitfor.Cond(t, "ann's history answers", func() bool {
		return api(t, a, "GET", "/v1/players/"+ann.uuid+"/matches?limit=100", "", nil, &history) == 200
	})
	if n := len(history.Matches); n != 2 {
		t.Fatalf("ann's history: %d matches, want 2 (each room once)", n)
	}
	if len(fights()) != 0 {
		t.Fatal("a fight process was started on the host: the drain may have been its")
	}
	if !strings.Contains(h.log.String(), "pending result applied") {
		t.Fatalf("the host's log does not say it applied the result:\n%s", h.log.String())
	}
	for who, log := range map[string]string{"host": h.log.String(), "dispatcher": a.log.String()} {
		if strings.Contains(log, "pw-not-in-logs") {
			t.Fatalf("the database password is in the %s's log", who)
		}
	}
	if cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(h.cmd.Process.Pid) + "/cmdline"); err == nil && strings.Contains(string(cmdline), "pw-not-in-logs") {
		t.Fatal("the database password is on the host's command line")
	}
}
