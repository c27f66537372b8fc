package integration

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the test's own connection to arena's SQLite file

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/playerdb/dbtest"
	"github.com/arena-game/arena/results"
)

// queue queues g (again once its last room is over) and returns the
// rating the queue read for it.
func (g *gamer) queue(t *testing.T, ctx context.Context) int {
	t.Helper()
	for {
		if err := g.play.SendJSON(map[string]string{"type": "queue"}); err != nil {
			t.Fatal(err)
		}
		var q struct{ Score int }
		err := g.play.RecvType(ctx, "queued", &q)
		var re *wsconn.RemoteError
		if errors.As(err, &re) && re.Code == "restarting" {
			t.Fatalf("the dispatcher is restarting: %v", err)
		}
		if errors.As(err, &re) && re.Code == "in_room" {
			select { // the dispatcher has not heard of the room's end yet
			case <-ctx.Done():
				t.Fatal("still in a room")
			case <-time.After(50 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return q.Score
	}
}

// fightResult is a fight room's result message, as the tests read it.
type fightResult struct {
	Room    string `json:"room"`
	Winner  string `json:"winner"`
	Pending bool   `json:"pending"`
	Players []struct {
		UUID     string `json:"uuid"`
		OldScore int    `json:"old_score"`
		NewScore int    `json:"new_score"`
	} `json:"players"`
}

func (r fightResult) scores(uuid string) (old, new int) {
	for _, p := range r.Players {
		if p.UUID == uuid {
			return p.OldScore, p.NewScore
		}
	}
	return -1, -1
}

// playRoom matches winner and loser in a room of two, joins them to the
// fight, and has the loser leave; midway (both joined) it calls
// beforeEnd. It returns the winner's result message.
func playRoom(t *testing.T, ctx context.Context, winner, loser *gamer, beforeEnd func()) fightResult {
	t.Helper()
	winner.queue(t, ctx)
	loser.queue(t, ctx)
	fights := map[*gamer]*wsconn.Client{}
	room := ""
	for _, g := range []*gamer{winner, loser} {
		var m matchMsg
		if err := g.play.RecvType(ctx, "match", &m); err != nil {
			t.Fatal(err)
		}
		if room != "" && m.Room != room {
			t.Fatalf("matched into two rooms: %s and %s", room, m.Room)
		}
		room = m.Room
		cl, err := wsconn.DialClient(ctx, m.Fight+"?ticket="+url.QueryEscape(m.Ticket), 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close(wsconn.CloseNormal, "") })
		if err := cl.RecvType(ctx, "state", nil); err != nil {
			t.Fatal(err)
		}
		fights[g] = cl
	}
	if beforeEnd != nil {
		beforeEnd()
	}
	if err := fights[loser].SendJSON(map[string]string{"type": "leave"}); err != nil {
		t.Fatal(err)
	}
	var res fightResult
	if err := fights[winner].RecvType(ctx, "result", &res); err != nil {
		t.Fatal(err)
	}
	if res.Room != room || res.Winner != winner.uuid {
		t.Fatalf("result %+v; want room %s won by %s", res, room, winner.uuid)
	}
	return res
}

type profileView struct {
	Score  int `json:"score"`
	Games  int `json:"games"`
	Wins   int `json:"wins"`
	Losses int `json:"losses"`
}

func profileOf(t *testing.T, a *Arena, uuid string) profileView {
	t.Helper()
	var p profileView
	if code := api(t, a, "GET", "/v1/players/"+uuid, "", nil, &p); code != 200 {
		t.Fatalf("GET /v1/players/%s: %d", uuid, code)
	}
	return p
}

func historyLen(t *testing.T, a *Arena, uuid string) int {
	t.Helper()
	var h struct{ Matches []struct{ Room string } }
	if code := api(t, a, "GET", "/v1/players/"+uuid+"/matches?limit=100", "", nil, &h); code != 200 {
		t.Fatalf("history of %s: %d", uuid, code)
	}
	return len(h.Matches)
}

// lockDatabase holds arena's database write lock from this process (a
// stalled database, as arena's writers see it) until the returned func.
func lockDatabase(t *testing.T, dsn string) func() {
	t.Helper()
	// The transaction lives until the returned func: its context must not
	// end before (database/sql rolls a transaction back when it does).
	ctx := context.Background()
	var db *sql.DB
	var err error
	if strings.HasPrefix(dsn, "postgres") {
		db, err = sql.Open("pgx", dsn)
	} else {
		db, err = sql.Open("sqlite", "file:"+strings.TrimPrefix(dsn, "sqlite:")+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	}
	if err != nil {
		t.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		if strings.HasPrefix(dsn, "postgres") {
			_, err = tx.ExecContext(ctx, "LOCK TABLE matches IN ACCESS EXCLUSIVE MODE")
		} else {
			_, err = tx.ExecContext(ctx, "UPDATE arena_schema SET applied_ms = applied_ms WHERE version = 0")
		}
	}
	if err != nil {
		db.Close()
		t.Fatalf("lock the database: %v", err)
	}
	return func() { _ = tx.Rollback(); db.Close() }
}

// TestRecordsSurviveCacheAndDatabaseTrouble is issue 13's integration
// test, against SQLite and PostgreSQL: rooms are played; memcached is
// restarted empty and every rating and record is still there (also the
// rating the queue uses); memcached stalls as a room ends and the result is
// still stored and shown; the database stalls as a room ends and the
// players are told "pending" with no unstored number, the result is
// applied exactly once when the database answers, /healthz says unhealthy
// meanwhile; and the fight process's load is back to 0 afterwards.
func TestRecordsSurviveCacheAndDatabaseTrouble(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		dsn := dbtest.DSN(t, b)
		mc1, err := store.StartEmbedded(0)
		if err != nil {
			t.Fatal(err)
		}
		proxy := newTCPProxy(t, mc1.Addr())
		// The stall lasts a few seconds (the fight's memcached writes time
		// out one after the other); the fleet lease outlasts it, so the
		// dispatcher keeps the fleet.
		a := startArena(t, "dispatcher", "--guest-login", "--room-size", "2", "--tick", "100ms",
			"--memcache", proxy.Addr(), "--db", dsn, "--min-map-processes", "0", "--owner-lease", "15s")
		ctx := ctxT(t, 120*time.Second)
		ann, bob := newGamer(t, ctx, a, "ann"), newGamer(t, ctx, a, "bob")

		// Two rooms, ann wins both.
		for i := 0; i < 2; i++ {
			if res := playRoom(t, ctx, ann, bob, nil); res.Pending {
				t.Fatalf("room %d pending with everything up", i)
			}
		}
		var annBefore, bobBefore profileView
		waitfor.Cond(t, "both rooms in the records", func() bool {
			annBefore, bobBefore = profileOf(t, a, ann.uuid), profileOf(t, a, bob.uuid)
			return annBefore.Games == 2 && bobBefore.Games == 2
		})
		if annBefore.Games != 2 || annBefore.Wins != 2 || bobBefore.Losses != 2 || annBefore.Score <= 1500 || bobBefore.Score >= 1500 {
			t.Fatalf("after two rooms: ann %+v bob %+v", annBefore, bobBefore)
		}

		// memcached restarts empty: nothing that matters is lost.
		mc1.Close()
		mc2, err := store.StartEmbedded(0)
		if err != nil {
			t.Fatal(err)
		}
		defer mc2.Close()
		proxy.Retarget(mc2.Addr())
		if p := profileOf(t, a, ann.uuid); p != annBefore {
			t.Fatalf("ann after memcached restarted empty: %+v, was %+v", p, annBefore)
		}
		if n := historyLen(t, a, bob.uuid); n != 2 {
			t.Fatalf("bob's history after the restart: %d matches", n)
		}

		// memcached stalls as a room ends: the result is stored and shown.
		res := playRoom(t, ctx, ann, bob, proxy.Stall)
		proxy.Resume()
		if res.Pending {
			t.Fatal("a stalled memcached made the result pending")
		}
		if old, nw := res.scores(ann.uuid); old != annBefore.Score || nw <= old {
			t.Fatalf("ann's shown rating %d -> %d; stored before %d", old, nw, annBefore.Score)
		}
		// The cached record the stalled memcached kept is dropped once it
		// answers again (retried every 250 ms).
		_, shown := res.scores(ann.uuid)
		var annAfter profileView
		waitfor.Cond(t, "the stored rating is read, not the cache's stale one", func() bool {
			annAfter = profileOf(t, a, ann.uuid)
			return annAfter.Score == shown && annAfter.Games == 3
		})

		// The queue reads the stored rating, whatever the cache went through.
		// The database stalls as a room ends: pending, nothing unstored shown.
		var unlock func()
		res = playRoom(t, ctx, ann, bob, func() { unlock = lockDatabase(t, dsn) })
		if !res.Pending {
			unlock()
			t.Fatalf("result with the database stalled: %+v; want pending", res)
		}
		for _, p := range res.Players {
			stored := annAfter.Score
			if p.UUID == bob.uuid {
				stored = profileOf(t, a, bob.uuid).Score
			}
			if p.OldScore != stored || p.NewScore != stored {
				unlock()
				t.Fatalf("pending result shows %d -> %d for %s; the stored rating is %d", p.OldScore, p.NewScore, p.UUID, stored)
			}
		}
		waitfor.Cond(t, "/healthz turns unhealthy while results wait", func() bool {
			resp, err := httpGet("http://" + a.HTTP + "/healthz")
			return err == nil && resp == 503
		})
		unlock()
		waitfor.Cond(t, "the pending result is applied", func() bool { return profileOf(t, a, ann.uuid).Games == 4 })
		waitfor.Cond(t, "/healthz is ok again", func() bool {
			resp, err := httpGet("http://" + a.HTTP + "/healthz")
			return err == nil && resp == 200
		})
		if p := profileOf(t, a, ann.uuid); p.Wins != 4 || p.Score <= annAfter.Score {
			t.Fatalf("ann after the database came back: %+v", p)
		}
		if n := historyLen(t, a, ann.uuid); n != 4 {
			t.Fatalf("ann's history: %d matches, want 4 (each room once)", n)
		}
		// Ratings are applied once: a fifth room starts from the fourth's.
		if got := ann.queue(t, ctx); got != profileOf(t, a, ann.uuid).Score {
			t.Fatalf("the queue read %d, stored %d", got, profileOf(t, a, ann.uuid).Score)
		}
		// The fight process's load is right afterwards.
		waitfor.Cond(t, "fight load back to 0", func() bool {
			for _, p := range stat(t, a.Line).Processes {
				if p.Kind == "fight" && p.Load != 0 {
					return false
				}
			}
			return true
		})
		if n, err := results.Pending(a.Outbox); n != 0 || err != nil {
			t.Fatalf("outbox left with %d results (%v)", n, err)
		}
	})
}

// httpGet returns the status of GET url.
func httpGet(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// TestBadDatabaseAtStart: arena stops with a clear message when its
// database cannot be reached, and when its schema is newer than the
// binary (and leaves that database untouched).
func TestBadDatabaseAtStart(t *testing.T) {
	mc, err := store.StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	defer mc.Close()
	run := func(dsn string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, arenaBin, "dispatcher", "--memcache", mc.Addr(), "--fleet-token", "t", "--secret", "s",
			"--db", dsn, "--outbox", t.TempDir(), "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--grpc", "").CombinedOutput()
		return string(out), err
	}
	closed := freePort(t)
	start := time.Now()
	out, err := run("postgres://arena:pw-not-shown@127.0.0.1:" + strconv.Itoa(closed) + "/arena?sslmode=disable&connect_timeout=2")
	if err == nil || !strings.Contains(out, "database unavailable") || strings.Contains(out, "pw-not-shown") {
		t.Fatalf("unreachable database: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("took %v to give up", d)
	}

	path := filepath.Join(t.TempDir(), "future.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE arena_schema (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_ms BIGINT NOT NULL); INSERT INTO arena_schema VALUES (999, 'future', 0)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out, err = run("sqlite:" + path)
	if err == nil || !strings.Contains(out, "schema version 999") || !strings.Contains(out, "newer arena") {
		t.Fatalf("newer schema: %v\n%s", err, out)
	}
	db, _ = sql.Open("sqlite", "file:"+path)
	defer db.Close()
	var tables int
	if err := db.QueryRow("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").Scan(&tables); err != nil || tables != 1 {
		t.Fatalf("the newer database was changed: %d tables, %v", tables, err)
	}
}

// TestDatabaseGoesAway: the PostgreSQL server becomes unreachable while
// arena runs (every connection cut, new ones refused): rooms end with
// their results pending, /healthz answers 503, logins answer
// database_unavailable; when it is back every pending result is applied
// exactly once and /healthz is ok.
func TestDatabaseGoesAway(t *testing.T) {
	dsn := dbtest.DSN(t, dbtest.Postgres)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgHost := u.Host
	pg := newTCPProxy(t, pgHost)
	u.Host = pg.Addr()
	a := startArena(t, "dispatcher", "--guest-login", "--room-size", "2", "--tick", "100ms", "--db", u.String())
	ctx := ctxT(t, 120*time.Second)
	ann, bob := newGamer(t, ctx, a, "ann"), newGamer(t, ctx, a, "bob")
	if res := playRoom(t, ctx, ann, bob, nil); res.Pending {
		t.Fatal("pending with the database up")
	}
	var before profileView
	waitfor.Cond(t, "the first room in ann's record", func() bool { before = profileOf(t, a, ann.uuid); return before.Games == 1 })

	gone := func() { pg.Retarget("127.0.0.1:1") } // nothing listens on port 1
	res := playRoom(t, ctx, ann, bob, gone)
	if !res.Pending {
		t.Fatalf("result with the database gone: %+v", res)
	}
	if old, nw := res.scores(ann.uuid); old != before.Score || nw != before.Score {
		t.Fatalf("a pending result shows %d -> %d; stored %d", old, nw, before.Score)
	}
	waitfor.Cond(t, "/healthz turns unhealthy", func() bool { code, err := httpGet("http://" + a.HTTP + "/healthz"); return err == nil && code == 503 })
	var e struct{ Code string }
	if code := api(t, a, "POST", "/v1/login", "", map[string]string{"username": "late"}, &e); code != 503 || e.Code != "database_unavailable" {
		t.Fatalf("login with the database gone: %d %+v", code, e)
	}

	pg.Retarget(pgHost)
	waitfor.Cond(t, "the pending result is applied", func() bool {
		var p profileView
		return api(t, a, "GET", "/v1/players/"+ann.uuid, "", nil, &p) == 200 && p.Games == 2
	})
	waitfor.Cond(t, "/healthz is ok again", func() bool { code, err := httpGet("http://" + a.HTTP + "/healthz"); return err == nil && code == 200 })
	if p := profileOf(t, a, ann.uuid); p.Wins != 2 || p.Score <= before.Score {
		t.Fatalf("after the database came back: %+v (before %+v)", p, before)
	}
	if n := historyLen(t, a, ann.uuid); n != 2 {
		t.Fatalf("history %d, want 2", n)
	}
}
