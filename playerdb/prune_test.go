package playerdb_test

import (
	"errors"
	"testing"
	"time"

	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
)

// TestPruneGuests: only guest records nobody can reach and nothing refers
// to are deleted (no account, not a bot, no rating, no match, unseen since
// the cut-off), in batches of the limit; a pruned guest's id can be used
// again.
func TestPruneGuests(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, b dbtest.Backend) {
		db := dbtest.Open(t, b)
		for _, p := range []playerdb.NewPlayer{
			{ID: "old1", Name: "old1"}, {ID: "old2", Name: "old2"}, {ID: "old3", Name: "old3"},
			{ID: "recent", Name: "recent"}, {ID: "named", Name: "named"}, {ID: "rated", Name: "rated"},
			{ID: "bot", Name: "bot-Ada", Bot: true},
		} {
			if _, err := db.EnsurePlayer(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.ClaimAccount(ctx, "named", "named", "hash"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetRating(ctx, playerdb.NewPlayer{ID: "rated", Name: "rated"}, playerdb.DefaultProfile, 1600); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, result("room1", "played1", "played2")); err != nil {
			t.Fatal(err)
		}
		// Everyone but "recent" was last seen long ago.
		if err := db.ExecForTest(ctx, "UPDATE players SET last_seen_ms = 1000 WHERE id <> 'recent'"); err != nil {
			t.Fatal(err)
		}
		cut := time.Now().Add(-time.Hour)
		if n, err := db.PruneGuests(ctx, cut, 2); err != nil || n != 2 {
			t.Fatalf("first batch of 2: %d, %v", n, err)
		}
		if n, err := db.PruneGuests(ctx, cut, 2); err != nil || n != 1 {
			t.Fatalf("second batch: %d, %v; want the third unplayed old guest", n, err)
		}
		if n, err := db.PruneGuests(ctx, cut, 2); err != nil || n != 0 {
			t.Fatalf("third batch: %d, %v; want none left", n, err)
		}
		for _, id := range []string{"old1", "old2", "old3"} {
			if _, err := db.Player(ctx, id); !errors.Is(err, playerdb.ErrNotFound) {
				t.Errorf("%s: %v; want it pruned", id, err)
			}
		}
		for _, id := range []string{"recent", "named", "rated", "bot", "played1", "played2"} {
			if _, err := db.Player(ctx, id); err != nil {
				t.Errorf("%s: %v; it must be kept", id, err)
			}
		}
		if p, err := db.EnsurePlayer(ctx, playerdb.NewPlayer{ID: "old1", Name: "back"}); err != nil || p.Name != "back" {
			t.Fatalf("a pruned guest's id again: %+v, %v", p, err)
		}
	})
}
