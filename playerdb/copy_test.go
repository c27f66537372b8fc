package playerdb_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
)

// seedForCopy fills db with more than a page (500) of players and
// ratings, and records of every other kind: guests, a named account, a
// bot, ratings in two profiles, matches.
func seedForCopy(t *testing.T, db *playerdb.DB) {
	t.Helper()
	if err := db.SeedForBench(ctx, "ranked", 1100); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if _, err := db.EnsurePlayer(ctx, playerdb.NewPlayer{ID: fmt.Sprintf("p%04d", i), Name: fmt.Sprintf("Player %d", i), Photo: "https://x/p.png", Bot: i == 7}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ClaimAccount(ctx, "p0001", "alice", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+2 < 12; i += 3 {
		r := result(fmt.Sprintf("room%04d", i), fmt.Sprintf("p%04d", i), fmt.Sprintf("p%04d", i+1), fmt.Sprintf("p%04d", i+2))
		if i%2 == 0 {
			r.Profile = "ranked"
		}
		if _, err := db.Apply(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCopy: every record of every table arrives, byte for byte, from
// SQLite to PostgreSQL, back, and between two SQLite files; the copy
// serves lookups as the source did; a target with records is refused and
// left as it was.
func TestCopy(t *testing.T) {
	for _, pair := range [][2]dbtest.Backend{{dbtest.SQLite, dbtest.Postgres}, {dbtest.Postgres, dbtest.SQLite}, {dbtest.SQLite, dbtest.SQLite}} {
		t.Run(string(pair[0])+"-to-"+string(pair[1]), func(t *testing.T) {
			src, dst := dbtest.Open(t, pair[0]), dbtest.Open(t, pair[1])
			seedForCopy(t, src)
			stats, err := playerdb.Copy(ctx, dst, src, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, table := range playerdb.CopyTablesForTest() {
				want, err := src.TableForTest(ctx, table)
				if err != nil {
					t.Fatal(err)
				}
				got, err := dst.TableForTest(ctx, table)
				if err != nil {
					t.Fatal(err)
				}
				if len(want) == 0 || stats[table] != len(want) {
					t.Errorf("%s: %d rows copied, source has %d", table, stats[table], len(want))
				}
				// Key order may differ between the two databases' collations.
				slices.Sort(want)
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("%s: %d rows differ from the source's %d", table, len(got), len(want))
				}
			}
			for _, profile := range []string{playerdb.DefaultProfile, "ranked"} {
				want, wn, err := src.Leaderboard(ctx, profile, 0, 20)
				if err != nil {
					t.Fatal(err)
				}
				got, gn, err := dst.Leaderboard(ctx, profile, 0, 20)
				if err != nil || gn != wn || fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s leaderboard: %v (%d), %v; want %v (%d)", profile, got, gn, err, want, wn)
				}
			}
			if id, _, err := dst.AccountCredentials(ctx, "alice"); err != nil || id != "p0001" {
				t.Fatalf("account after copy: %q, %v", id, err)
			}
			// A second copy into the now full target is refused.
			if _, err := playerdb.Copy(ctx, dst, src, nil); !errors.Is(err, playerdb.ErrNotEmpty) {
				t.Fatalf("copy into a full database: %v, want ErrNotEmpty", err)
			}
			if got, _ := dst.TableForTest(ctx, "players"); len(got) != 1112 {
				t.Fatalf("the refused copy changed the target: %d players", len(got))
			}
		})
	}
}
