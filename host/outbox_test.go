package host_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/fleet/fleettest"
	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/playerdb"
	"github.com/arena-game/arena/results"
)

// awayDB is a database that does not answer.
type awayDB struct{}

func (awayDB) Apply(context.Context, playerdb.Result) (playerdb.Applied, error) {
	return playerdb.Applied{}, errors.New("connection refused")
}

// leavePending leaves room's result in the outbox dir as a process does
// when the database is away as its room ends.
func leavePending(t *testing.T, dir, room string) {
	t.Helper()
	rec, err := results.New(awayDB{}, nil, results.Config{Dir: dir, Attempt: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	res := playerdb.Result{Room: room, Game: "fight", Profile: "default", Host: "10.0.0.2:7000", Reason: "last_standing",
		Started: time.Now().Add(-time.Minute), Ended: time.Now(),
		Players: []playerdb.PlayerResult{{UUID: "ann-" + room, Name: "ann", Rank: 1}, {UUID: "bob-" + room, Name: "bob", Rank: 2}}}
	if _, err := rec.Record(context.Background(), res); !errors.Is(err, results.ErrPending) {
		t.Fatalf("record with the database away: %v, want pending", err)
	}
	rec.Close() // the process exits, leaving its entry
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHostDrainsItsOutbox: a result a process left in the host's outbox
// is applied to the database by the host itself, with no process of the
// host running, exactly once: with the database the dispatcher sends over
// host control, and with the host's own (--db), which wins.
func TestHostDrainsItsOutbox(t *testing.T) {
	for _, own := range []bool{false, true} {
		name := "the dispatcher's database"
		if own {
			name = "the host's own database"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			dsn := "sqlite:" + filepath.Join(dir, "players-secret-name.db")
			outbox := filepath.Join(dir, "outbox")
			leavePending(t, outbox, "r1")
			n := &fleettest.Network{}
			fleettest.NewDispatcher(t, n, func(c *fleet.Config) {
				c.Defaults.DatabaseDSN = dsn
				if own {
					// The dispatcher's own is no good from this host.
					c.Defaults.DatabaseDSN = "sqlite:" + filepath.Join(dir, "unreachable", "x?mode=ro")
				}
			})
			fleettest.NewHost(t, n, "h", "10.0.0.2", fleettest.Kinds(t, 1), func(c *host.Config) {
				c.OutboxDir, c.DrainOutbox = outbox, true
				if own {
					c.Database = dsn
				}
			})
			waitfor.Cond(t, "the host applies the result in its outbox", func() bool {
				n, err := results.Pending(outbox)
				return err == nil && n == 0
			})
			db, err := playerdb.Open(context.Background(), playerdb.Config{DSN: dsn})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			m, err := db.Match(context.Background(), "r1")
			if err != nil || len(m.Players) != 2 || m.Players[0].After <= 1500 {
				t.Fatalf("match r1 in the database: %+v %v", m, err)
			}
			p, err := db.Player(context.Background(), "ann-r1")
			if err != nil || p.Ratings["default"].Games != 1 {
				t.Fatalf("ann's record: %+v %v; want one game", p, err)
			}
			if rejected, _ := os.ReadDir(filepath.Join(outbox, "rejected")); len(rejected) != 0 {
				t.Fatalf("entries rejected: %v", rejected)
			}
		})
	}
}

// TestHostOutboxWaitsForTheDatabase: while the database the dispatcher
// sent does not answer, the host keeps the result in its outbox, says so
// in its log, and never logs the DSN's password.
func TestHostOutboxWaitsForTheDatabase(t *testing.T) {
	outbox := filepath.Join(t.TempDir(), "outbox")
	leavePending(t, outbox, "r1")
	n := &fleettest.Network{}
	fleettest.NewDispatcher(t, n, func(c *fleet.Config) {
		c.Defaults.DatabaseDSN = "postgres://arena:pw-never-logged@127.0.0.1:1/arena?sslmode=disable&connect_timeout=1"
	})
	logs := &syncBuffer{}
	fleettest.NewHost(t, n, "h", "10.0.0.2", fleettest.Kinds(t, 1), func(c *host.Config) {
		c.OutboxDir, c.DrainOutbox = outbox, true
		c.Log = slog.New(slog.NewTextHandler(logs, nil))
	})
	waitfor.Cond(t, "the host says the database is unreachable", func() bool {
		return strings.Contains(logs.String(), "results database unreachable")
	})
	if strings.Contains(logs.String(), "pw-never-logged") {
		t.Fatalf("the database password is in the host's log:\n%s", logs.String())
	}
	if n, err := results.Pending(outbox); n != 1 {
		t.Fatalf("outbox holds %d results (%v); want the pending result", n, err)
	}
}
