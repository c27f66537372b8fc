package playerdb_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/playerdb/dbtest"
)

func TestCacheReadsThrough(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	st := storetest.New(t)
	c := playerdb.NewCache(db, st)
	if _, err := c.Player(ctx, "nobody"); !errors.Is(err, playerdb.ErrNotFound) {
		t.Fatalf("unknown player: %v", err)
	}
	if _, err := db.Apply(ctx, result("r1", "a", "b")); err != nil {
		t.Fatal(err)
	}
	p, err := c.Player(ctx, "a")
	if err != nil || p.RatingIn("") != 1516 {
		t.Fatalf("%+v, %v", p, err)
	}
	// Filled: a change the cache was not told about is not seen...
	if _, err := db.Apply(ctx, result("r2", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Player(ctx, "a"); p.RatingIn("") != 1516 || p.Ratings["default"].Games != 1 {
		t.Fatalf("cached read: %+v", p.Ratings)
	}
	// ...until it is invalidated.
	if err := c.Invalidate(ctx, "a", "never-cached"); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Player(ctx, "a"); p.Ratings["default"].Games != 2 {
		t.Fatalf("after invalidation: %+v", p.Ratings)
	}
	// Losing every cached record loses nothing.
	if err := c.Invalidate(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Player(ctx, "b"); p.Ratings["default"].Games != 2 {
		t.Fatalf("b from the database: %+v", p.Ratings)
	}
}

func TestCacheDownFallsBackToDatabase(t *testing.T) {
	db := dbtest.Open(t, dbtest.SQLite)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: []string{addr}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := playerdb.NewCache(db, mc)
	if _, err := db.Apply(ctx, result("r1", "a", "b")); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Player(ctx, "a"); err != nil || p.RatingIn("") != 1516 {
		t.Fatalf("with memcached down: %+v, %v", p, err)
	}
	if err := c.Invalidate(ctx, "a"); err == nil {
		t.Fatal("invalidation with memcached down reported success")
	}
}
