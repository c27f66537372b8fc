package playerdb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
)

var ctx = context.Background()

func result(room string, ids ...string) playerdb.Result {
	r := playerdb.Result{Room: room, Game: "fight", Host: "127.0.0.1:7000", Reason: "last_standing",
		Started: time.UnixMilli(1_700_000_000_000), Ended: time.UnixMilli(1_700_000_060_000)}
	for i, id := range ids {
		r.Players = append(r.Players, playerdb.PlayerResult{UUID: id, Name: "name-" + id, Rank: i + 1, Score: float64(100 - 20*i)})
	}
	return r
}

func TestMigrations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		dsn := dbtest.DSN(t, b)
		db, err := playerdb.Open(ctx, playerdb.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := db.Version(ctx); err != nil || v != playerdb.SchemaVersion() || v < 1 {
			t.Fatalf("version %d, %v; want %d", v, err, playerdb.SchemaVersion())
		}
		if _, err := db.EnsurePlayer(ctx, playerdb.NewPlayer{ID: "p1", Name: "Ann"}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		// Reopening applies nothing twice and keeps the data.
		db, err = playerdb.Open(ctx, playerdb.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		if p, err := db.Player(ctx, "p1"); err != nil || p.Name != "Ann" {
			t.Fatalf("after reopen: %+v, %v", p, err)
		}
		db.Close()
	})
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		dsn := dbtest.DSN(t, b)
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := playerdb.Open(ctx, playerdb.Config{DSN: dsn})
				if err == nil {
					db.Close()
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestSchemaNewerRefused(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		dsn := dbtest.DSN(t, b)
		db, err := playerdb.Open(ctx, playerdb.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.ExecForTest(ctx, fmt.Sprintf("INSERT INTO arena_schema (version, name, applied_ms) VALUES (%d, 'future', 0)", playerdb.SchemaVersion()+1)); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = playerdb.Open(ctx, playerdb.Config{DSN: dsn})
		if !errors.Is(err, playerdb.ErrSchemaNewer) || !strings.Contains(err.Error(), "newer arena") {
			t.Fatalf("open of a newer schema: %v; want ErrSchemaNewer with advice", err)
		}
	})
}

func TestUnreachableAtOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	start := time.Now()
	_, err = playerdb.Open(ctx, playerdb.Config{DSN: "postgres://arena:hunter2@" + addr + "/arena?sslmode=disable&connect_timeout=2", Timeout: 3 * time.Second})
	if !errors.Is(err, playerdb.ErrUnavailable) {
		t.Fatalf("open of a closed port: %v; want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error shows the password: %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("open took %v", time.Since(start))
	}
	if _, err := playerdb.Open(ctx, playerdb.Config{DSN: "sqlite:/proc/arena/nope.db"}); err == nil {
		t.Fatal("open of an sqlite file that cannot be created succeeded")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:secret@h:5432/db":         "postgres://u:xxxxx@h:5432/db",
		"postgres://u@h/db?password=secret&x=1": "postgres://u@h/db?password=xxxxx&x=1",
		"sqlite:.arena/arena.db":                "sqlite:.arena/arena.db",
		"postgresql://h/db":                     "postgresql://h/db",
	} {
		if got := playerdb.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnsurePlayer(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		p, err := db.EnsurePlayer(ctx, playerdb.NewPlayer{ID: "g1", Name: "  Guest  ", Photo: "https://x/y.png"})
		if err != nil || p.Name != "Guest" || p.Photo != "https://x/y.png" || p.Created.IsZero() || len(p.Ratings) != 0 || p.Account != "" {
			t.Fatalf("%+v, %v", p, err)
		}
		if p.RatingIn("") != playerdb.DefaultRating {
			t.Fatalf("new player's rating %d", p.RatingIn(""))
		}
		p2, err := db.EnsurePlayer(ctx, playerdb.NewPlayer{ID: "g1", Name: "Renamed"})
		if err != nil || p2.Name != "Renamed" || !p2.Created.Equal(p.Created) {
			t.Fatalf("second ensure: %+v, %v", p2, err)
		}
		if _, err := db.Player(ctx, "nobody"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("unknown player: %v", err)
		}
		if _, err := db.Player(ctx, "bad id!"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("malformed id: %v", err)
		}
		if err := db.Seen(ctx, "nobody"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("seen of unknown: %v", err)
		}
		for _, bad := range []playerdb.NewPlayer{
			{ID: "g2", Name: strings.Repeat("n", 33)},
			{ID: "g2", Name: ""},
			{ID: "g2", Name: "a<b>"},
			{ID: "g 2", Name: "x"},
			{ID: "g2", Name: "x", Photo: strings.Repeat("p", 513)},
		} {
			if _, err := db.EnsurePlayer(ctx, bad); !errors.Is(err, playerdb.ErrInvalid) {
				t.Errorf("ensure %+v: %v; want ErrInvalid", bad, err)
			}
		}
		if _, err := db.Player(ctx, "g2"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("a refused player was stored: %v", err)
		}
	})
}

func TestApplyRatesOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		r := result("room1", "a", "b", "c")
		got, err := db.Apply(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]playerdb.RatingChange{"a": {1500, 1516}, "b": {1500, 1500}, "c": {1500, 1484}}
		if got.Duplicate || fmt.Sprint(got.Ratings) != fmt.Sprint(want) {
			t.Fatalf("applied %+v, want %v", got, want)
		}
		again, err := db.Apply(ctx, r)
		if err != nil || !again.Duplicate || fmt.Sprint(again.Ratings) != fmt.Sprint(want) {
			t.Fatalf("second apply: %+v, %v; want a duplicate with the first changes", again, err)
		}
		a, _ := db.Player(ctx, "a")
		c, _ := db.Player(ctx, "c")
		ra, rc := a.Ratings[playerdb.DefaultProfile], c.Ratings[playerdb.DefaultProfile]
		if ra.Rating != 1516 || ra.Games != 1 || ra.Wins != 1 || ra.Losses != 0 || a.Name != "name-a" {
			t.Fatalf("a: %+v", a)
		}
		if rc.Rating != 1484 || rc.Games != 1 || rc.Wins != 0 || rc.Losses != 1 {
			t.Fatalf("c: %+v", c)
		}
		// A second room starts from the stored ratings.
		got2, err := db.Apply(ctx, result("room2", "c", "a"))
		if err != nil || got2.Ratings["c"].Before != 1484 || got2.Ratings["a"].Before != 1516 || got2.Ratings["c"].After <= 1484 {
			t.Fatalf("room2: %+v, %v", got2, err)
		}
		m, err := db.Match(ctx, "room1")
		if err != nil || len(m.Players) != 3 || m.Players[0].ID != "a" || m.Players[0].After != 1516 || m.Host != "127.0.0.1:7000" ||
			m.Profile != playerdb.DefaultProfile || m.Ended.UnixMilli() != 1_700_000_060_000 || m.Players[2].Score != 60 {
			t.Fatalf("match: %+v, %v", m, err)
		}
	})
}

func TestApplyProfilesAreSeparate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		r := result("r1", "a", "b")
		r.Profile = "duel"
		if _, err := db.Apply(ctx, r); err != nil {
			t.Fatal(err)
		}
		a, _ := db.Player(ctx, "a")
		if a.RatingIn("duel") != 1516 || a.RatingIn("") != playerdb.DefaultRating || len(a.Ratings) != 1 {
			t.Fatalf("%+v", a.Ratings)
		}
	})
}

func TestApplyDrawsAndSingles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		r := result("draw", "a", "b")
		r.Players[1].Rank = 1
		if _, err := db.Apply(ctx, r); err != nil {
			t.Fatal(err)
		}
		a, _ := db.Player(ctx, "a")
		if ra := a.Ratings["default"]; ra.Games != 1 || ra.Wins != 0 || ra.Losses != 0 || ra.Rating != 1500 {
			t.Fatalf("draw: %+v", ra)
		}
		if got, err := db.Apply(ctx, result("solo", "z")); err != nil || got.Ratings["z"] != (playerdb.RatingChange{Before: 1500, After: 1500}) {
			t.Fatalf("single-player result: %+v, %v", got, err)
		}
	})
}

func TestApplyInvalidChangesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		bad := map[string]func(r *playerdb.Result){
			"room id":          func(r *playerdb.Result) { r.Room = "no spaces" },
			"no players":       func(r *playerdb.Result) { r.Players = nil },
			"twice":            func(r *playerdb.Result) { r.Players[1].UUID = r.Players[0].UUID },
			"rank 0":           func(r *playerdb.Result) { r.Players[0].Rank = 0 },
			"oversized name":   func(r *playerdb.Result) { r.Players[1].Name = strings.Repeat("x", 33) },
			"profile":          func(r *playerdb.Result) { r.Profile = "UPPER" },
			"player id":        func(r *playerdb.Result) { r.Players[0].UUID = strings.Repeat("a", 65) },
			"too many players": func(r *playerdb.Result) { r.Players = make([]playerdb.PlayerResult, 65) },
		}
		for name, mutate := range bad {
			r := result("bad", "a", "b")
			mutate(&r)
			if _, err := db.Apply(ctx, r); !errors.Is(err, playerdb.ErrInvalid) {
				t.Errorf("%s: %v; want ErrInvalid", name, err)
			}
		}
		if _, err := db.Match(ctx, "bad"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("a refused result was recorded: %v", err)
		}
		if _, err := db.Player(ctx, "a"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("a refused result created a player: %v", err)
		}
	})
}

// TestApplyConcurrentDuplicates sends one result from many goroutines at
// once (a retried report racing the first): exactly one applies.
func TestApplyConcurrentDuplicates(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		r := result("dup", "a", "b", "c")
		var wg sync.WaitGroup
		var mu sync.Mutex
		firsts := 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := db.Apply(ctx, r)
				if err != nil {
					t.Error(err)
					return
				}
				if got.Ratings["a"] != (playerdb.RatingChange{Before: 1500, After: 1516}) {
					t.Errorf("changes %+v", got.Ratings)
				}
				mu.Lock()
				if !got.Duplicate {
					firsts++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		a, _ := db.Player(ctx, "a")
		if firsts != 1 || a.Ratings["default"].Games != 1 || a.Ratings["default"].Rating != 1516 {
			t.Fatalf("%d first applications, a: %+v", firsts, a.Ratings)
		}
	})
}

// TestApplyConcurrentOverlapping applies many results over a small set of
// players from many goroutines: no change is lost, and the leaderboard's
// histogram agrees with the ratings.
func TestApplyConcurrentOverlapping(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		ids := []string{"p0", "p1", "p2", "p3", "p4", "p5"}
		const rooms = 60
		var wg sync.WaitGroup
		for i := 0; i < rooms; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := result(fmt.Sprintf("room%d", i), ids[i%6], ids[(i+1)%6], ids[(i+3)%6])
				if _, err := db.Apply(ctx, r); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		games, sum := 0, 0
		for _, id := range ids {
			p, err := db.Player(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			games += p.Ratings["default"].Games
			sum += p.Ratings["default"].Rating
			// Every match of the player chains: each starts where the
			// previous one left the rating.
			ms, _, err := db.Matches(ctx, id, playerdb.Cursor{}, 100)
			if err != nil || len(ms) != p.Ratings["default"].Games {
				t.Fatalf("%s: %d matches, %v; games %d", id, len(ms), err, p.Ratings["default"].Games)
			}
		}
		if games != rooms*3 {
			t.Fatalf("%d games recorded, want %d", games, rooms*3)
		}
		board, total, err := db.Leaderboard(ctx, "", 0, 100)
		if err != nil || total != 6 || len(board) != 6 {
			t.Fatalf("board %d of %d, %v", len(board), total, err)
		}
		for _, e := range board {
			above := 0
			for _, o := range board {
				if o.Rating > e.Rating {
					above++
				}
			}
			if e.Place != above+1 {
				t.Fatalf("%s place %d, want %d (board %+v)", e.ID, e.Place, above+1, board)
			}
			sum -= e.Rating
		}
		if sum != 0 {
			t.Fatal("leaderboard ratings differ from the players'")
		}
	})
}

func TestMatchesPaging(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		for i := 0; i < 25; i++ {
			r := result(fmt.Sprintf("m%02d", i), "me", fmt.Sprintf("o%d", i))
			r.Ended = time.UnixMilli(int64(1_700_000_000_000 + (i/2)*1000)) // pairs end together
			if _, err := db.Apply(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		var seen []string
		cur := playerdb.Cursor{}
		for page := 0; ; page++ {
			ms, next, err := db.Matches(ctx, "me", cur, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				seen = append(seen, m.Room)
			}
			if next == (playerdb.Cursor{}) {
				if page != 2 || len(ms) != 5 {
					t.Fatalf("last page %d has %d", page, len(ms))
				}
				break
			}
			cur = next
		}
		if len(seen) != 25 || seen[0] != "m24" || seen[24] != "m00" {
			t.Fatalf("history %v", seen)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] >= seen[i-1] {
				t.Fatalf("not newest first: %v", seen)
			}
		}
		for _, limit := range []int{0, -1, 101} {
			if _, _, err := db.Matches(ctx, "me", playerdb.Cursor{}, limit); !errors.Is(err, playerdb.ErrInvalid) {
				t.Errorf("limit %d: %v", limit, err)
			}
		}
		if _, _, err := db.Matches(ctx, "nobody", playerdb.Cursor{}, 10); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("unknown player: %v", err)
		}
		if ms, next, err := db.Matches(ctx, "o3", playerdb.Cursor{}, 10); err != nil || len(ms) != 1 || next != (playerdb.Cursor{}) {
			t.Fatalf("o3: %v %v %v", ms, next, err)
		}
	})
}

func TestLeaderboard(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		for i, rating := range []int{1600, 1500, 1700, 1500, 1400} {
			if err := db.SetRating(ctx, playerdb.NewPlayer{ID: fmt.Sprintf("p%d", i), Name: fmt.Sprintf("P%d", i)}, "", rating); err != nil {
				t.Fatal(err)
			}
		}
		board, total, err := db.Leaderboard(ctx, "default", 0, 10)
		if err != nil || total != 5 {
			t.Fatal(total, err)
		}
		var got []string
		for _, e := range board {
			got = append(got, fmt.Sprintf("%d:%s:%d", e.Place, e.ID, e.Rating))
		}
		if want := "[1:p2:1700 2:p0:1600 3:p1:1500 3:p3:1500 5:p4:1400]"; fmt.Sprint(got) != want {
			t.Fatalf("board %v, want %s", got, want)
		}
		page, _, err := db.Leaderboard(ctx, "", 3, 2)
		if err != nil || len(page) != 2 || page[0].ID != "p3" || page[0].Place != 3 || page[1].Place != 5 {
			t.Fatalf("page from 3: %+v, %v", page, err)
		}
		e, err := db.Place(ctx, "", "p3")
		if err != nil || e.Place != 3 || e.Rating != 1500 || e.Name != "P3" {
			t.Fatalf("place: %+v, %v", e, err)
		}
		// Changing a rating moves the player in the histogram.
		if err := db.SetRating(ctx, playerdb.NewPlayer{ID: "p4", Name: "P4"}, "", 1800); err != nil {
			t.Fatal(err)
		}
		if e, _ := db.Place(ctx, "", "p4"); e.Place != 1 {
			t.Fatalf("p4 after 1800: %+v", e)
		}
		if e, _ := db.Place(ctx, "", "p3"); e.Place != 4 {
			t.Fatalf("p3 after p4 passed: %+v", e)
		}
		if _, err := db.Place(ctx, "other", "p3"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("place in an unplayed profile: %v", err)
		}
		for _, c := range [][2]int{{-1, 10}, {0, 0}, {0, 101}, {10001, 10}} {
			if _, _, err := db.Leaderboard(ctx, "", c[0], c[1]); !errors.Is(err, playerdb.ErrInvalid) {
				t.Errorf("offset %d limit %d: %v", c[0], c[1], err)
			}
		}
		if board, total, err := db.Leaderboard(ctx, "empty", 0, 10); err != nil || total != 0 || len(board) != 0 {
			t.Fatalf("empty profile: %v %d %v", board, total, err)
		}
	})
}

func TestAccounts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		for _, id := range []string{"g1", "g2"} {
			if _, err := db.EnsurePlayer(ctx, playerdb.NewPlayer{ID: id, Name: id}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.ClaimAccount(ctx, "g1", "Alice", "hash1"); err != nil {
			t.Fatal(err)
		}
		if id, hash, err := db.AccountCredentials(ctx, "ALICE"); err != nil || id != "g1" || hash != "hash1" {
			t.Fatalf("credentials: %s %s %v", id, hash, err)
		}
		if p, _ := db.Player(ctx, "g1"); p.Account != "alice" {
			t.Fatalf("account %q", p.Account)
		}
		if err := db.ClaimAccount(ctx, "g2", "alice", "h"); !errors.Is(err, playerdb.ErrAccountTaken) {
			t.Fatalf("taken: %v", err)
		}
		if err := db.ClaimAccount(ctx, "g1", "other", "h"); !errors.Is(err, playerdb.ErrHasAccount) {
			t.Fatalf("second account: %v", err)
		}
		if err := db.ClaimAccount(ctx, "nobody", "newname", "h"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("unknown player: %v", err)
		}
		for _, bad := range []string{"ab", strings.Repeat("a", 33), "sp ace", "émile"} {
			if err := db.ClaimAccount(ctx, "g2", bad, "h"); !errors.Is(err, playerdb.ErrInvalid) {
				t.Errorf("account %q: %v", bad, err)
			}
		}
		if _, _, err := db.AccountCredentials(ctx, "nobody"); !errors.Is(err, playerdb.ErrNotFound) {
			t.Fatalf("unknown account: %v", err)
		}
	})
}

// TestApplyGivesUpOnAStalledDatabase: Apply returns by its context's
// deadline when another writer holds the database, and applies once the
// writer is gone.
func TestApplyGivesUpOnAStalledDatabase(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		dsn := dbtest.DSN(t, b)
		db, err := playerdb.Open(ctx, playerdb.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		locker, err := playerdb.Open(ctx, playerdb.Config{DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer locker.Close()
		release, err := locker.LockWritesForTest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		start := time.Now()
		_, err = db.Apply(c, result("stalled", "a", "b"))
		cancel()
		if !errors.Is(err, playerdb.ErrUnavailable) {
			t.Fatalf("apply against a stalled database: %v; want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("apply took %v past its 300ms deadline", d)
		}
		release()
		// The abandoned try may still have committed once the lock went
		// (then this one is a duplicate): either way it is applied once.
		if got, err := db.Apply(ctx, result("stalled", "a", "b")); err != nil || got.Ratings["a"].After != 1516 {
			t.Fatalf("after the stall: %+v, %v", got, err)
		}
		if p, _ := db.Player(ctx, "a"); p.Ratings["default"].Games != 1 {
			t.Fatalf("applied %d times", p.Ratings["default"].Games)
		}
	})
}

// TestTokenRevocation: tokens_valid_from_s (migration 0004) starts at 0,
// a revocation moves it to the second after now's (and always forward),
// a password change stores the hash and revokes in one step, and a guest
// has no password to change. The column is read from the database even
// through a Cache that holds the record.
func TestTokenRevocation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		for _, id := range []string{"named", "guest"} {
			if _, err := db.EnsurePlayer(ctx, playerdb.NewPlayer{ID: id, Name: id}); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.ClaimAccount(ctx, "named", "named", "hash1"); err != nil {
			t.Fatal(err)
		}
		if from, err := db.TokensValidFrom(ctx, "named"); err != nil || from != 0 {
			t.Fatalf("before any revocation: %d, %v", from, err)
		}
		now := time.Unix(1_800_000_000, 900_000_000)
		from, err := db.RevokeTokens(ctx, "guest", now)
		if err != nil || from != now.Unix()+1 {
			t.Fatalf("revoke: %d, %v; want %d", from, err, now.Unix()+1)
		}
		// A second revocation within the same second still moves forward,
		// so it refuses the tokens the first one issued.
		if again, err := db.RevokeTokens(ctx, "guest", now); err != nil || again != from+1 {
			t.Fatalf("second revoke in the same second: %d, %v; want %d", again, err, from+1)
		}
		if got, _ := db.TokensValidFrom(ctx, "guest"); got != from+1 {
			t.Fatalf("stored %d, want %d", got, from+1)
		}
		if _, err := db.ChangePassword(ctx, "guest", "hash2", now); !errors.Is(err, playerdb.ErrNoAccount) {
			t.Fatalf("a guest's password change: %v", err)
		}
		if _, _, err := db.PlayerCredentials(ctx, "guest"); !errors.Is(err, playerdb.ErrNoAccount) {
			t.Fatalf("a guest's credentials: %v", err)
		}

		c := playerdb.NewCache(db, storetest.New(t))
		if _, err := c.Player(ctx, "named"); err != nil { // cached now
			t.Fatal(err)
		}
		changed, err := c.ChangePassword(ctx, "named", "hash2", now.Add(time.Minute))
		if err != nil || changed != now.Unix()+61 {
			t.Fatalf("change password: %d, %v", changed, err)
		}
		if got, err := c.TokensValidFrom(ctx, "named"); err != nil || got != changed {
			t.Fatalf("through the cache: %d, %v; want %d", got, err, changed)
		}
		if acc, hash, err := db.PlayerCredentials(ctx, "named"); err != nil || acc != "named" || hash != "hash2" {
			t.Fatalf("credentials after the change: %s %s %v", acc, hash, err)
		}
		if id, hash, err := db.AccountCredentials(ctx, "named"); err != nil || id != "named" || hash != "hash2" {
			t.Fatalf("account login sees %s %s %v", id, hash, err)
		}
		for _, id := range []string{"nobody", "bad id!"} {
			if _, err := db.TokensValidFrom(ctx, id); !errors.Is(err, playerdb.ErrNotFound) {
				t.Errorf("valid-from of %q: %v", id, err)
			}
			if _, err := db.RevokeTokens(ctx, id, now); !errors.Is(err, playerdb.ErrNotFound) {
				t.Errorf("revoke %q: %v", id, err)
			}
		}
		if _, err := db.ChangePassword(ctx, "named", "", now); !errors.Is(err, playerdb.ErrInvalid) {
			t.Fatalf("empty hash: %v", err)
		}
	})
}
