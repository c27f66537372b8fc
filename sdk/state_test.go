package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

// failingSaves is a store whose writes of room snapshots fail while down
// is set.
type failingSaves struct {
	store.Store
	down atomic.Bool
}

func (s *failingSaves) Set(ctx context.Context, it *store.Item) error {
	if s.down.Load() && strings.Contains(it.Key, "gamestate:") {
		return errors.New("memcached is away")
	}
	return s.Store.Set(ctx, it)
}

// TestFailedSavesLogOnce: while the store refuses a room's snapshots,
// every failed write is counted but only the first is logged, and the
// first write that works again says so (a memcached outage must not log a
// line per room per second).
func TestFailedSavesLogOnce(t *testing.T) {
	st := &failingSaves{Store: storetest.New(t)}
	st.down.Store(true)
	var log sdk.SyncLog
	env := newEnv(t, &testGame{}, sdk.Config{}, sdktestOptions(st, &log))
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("joined")
	for i := range 3 {
		a.Send(`{"type":"save"}`)
		a.Expect("saved")
		// One write at a time: saves made while one is in flight coalesce.
		waitfor.Cond(t, "the failed write", func() bool {
			return strings.Contains(env.Metrics(), fmt.Sprintf(`arena_game_state_saves_total{game="test",result="error"} %d`, i+1))
		})
	}
	if n := strings.Count(log.String(), "save room state failed"); n != 1 {
		t.Fatalf("%d log lines for 3 failed writes, want 1:\n%s", n, log.String())
	}
	st.down.Store(false)
	a.Send(`{"type":"save"}`)
	a.Expect("saved")
	waitfor.Cond(t, "a write that works", func() bool {
		return strings.Contains(env.Metrics(), `arena_game_state_saves_total{game="test",result="ok"} 1`)
	})
	if !strings.Contains(log.String(), "room state saved again") {
		t.Fatalf("no line for the save that worked again:\n%s", log.String())
	}
	if m := env.Metrics(); !strings.Contains(m, `arena_game_state_saved_bytes_total{game="test"}`) {
		t.Fatalf("no saved bytes counter:\n%s", m)
	}
}

func sdktestOptions(st store.Store, w *sdk.SyncLog) sdktest.Options {
	return sdktest.Options{Store: st, Log: slog.New(slog.NewTextHandler(w, nil))}
}
