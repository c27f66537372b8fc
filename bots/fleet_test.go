package bots

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/arena-game/arena/fightserver"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/prometheus/client_golang/prometheus"
)

// fast makes bots play quickly against the fake's 100 ms attack cooldown.
func fast(base string, n int) Config {
	return Config{BaseURL: base, OperatorToken: "op-token", Count: n,
		Think: 40 * time.Millisecond, AttackMin: 120 * time.Millisecond, AttackMax: 200 * time.Millisecond,
		Rest: 50 * time.Millisecond, MaxFight: 30 * time.Second}
}

func startFleet(t *testing.T, cfg Config) (*Fleet, context.CancelFunc, chan error) {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.Done():
		case <-time.After(waitfor.Deadline()):
			t.Error("Run did not return after cancel")
		}
	})
	return f, cancel, done
}

func TestFleetPlaysRealFightsAndQueuesAgain(t *testing.T) {
	d := newFakeDispatcher(t)
	f, cancel, done := startFleet(t, fast(d.srv.URL, 3))
	// Two rooms in a row: every bot played, got a result, and queued again.
	waitfor.Cond(t, "six games", func() bool { return f.Status().Games >= 6 })
	st := f.Status()
	if st.Target != 3 || st.Running != 3 || len(st.Bots) != 3 {
		t.Fatalf("status = %+v", st)
	}
	if st.Wins < 1 || st.Wins > st.Games/3+1 {
		t.Errorf("wins = %d of %d games; one winner per room", st.Wins, st.Games)
	}
	for i, b := range st.Bots {
		if b.Name != BotName(i) || b.UUID == "" || !strings.HasPrefix(b.Name, "bot-") {
			t.Errorf("bot %d = %+v", i, b)
		}
	}
	if d.logins.Load() != 3 {
		t.Errorf("logins = %d, want 3: a bot keeps its identity between fights", d.logins.Load())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(waitfor.Deadline()):
		t.Fatal("Run did not stop")
	}
	<-f.Done()
	if err := f.SetCount(1); !errors.Is(err, ErrStopped) {
		t.Errorf("SetCount after Run = %v, want ErrStopped", err)
	}
	if st := f.Status(); st.Running != 0 {
		t.Errorf("running after stop = %d", st.Running)
	}
	// Every play socket was closed by the bots (which leaves the queue).
	waitfor.Cond(t, "sockets closed", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.conns) == 0
	})
}

func TestSetCountGrowsAndShrinks(t *testing.T) {
	d := newFakeDispatcher(t)
	f, err := New(fast(d.srv.URL, 0))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetCount(2); err != nil { // before Run: the starting count
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = f.Run(ctx) }()
	waitfor.Cond(t, "two bots queued", func() bool { return f.Status().States[StateQueued] == 2 })
	if err := f.SetCount(3); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "a room of three", func() bool { return f.Status().Games >= 3 })
	if err := f.SetCount(1); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "one bot left", func() bool { st := f.Status(); return st.Running == 1 && st.Target == 1 })
	if f.Count() != 1 {
		t.Errorf("Count = %d", f.Count())
	}
	for _, n := range []int{-1, MaxBots + 1} {
		if err := f.SetCount(n); !errors.Is(err, ErrBadCount) {
			t.Errorf("SetCount(%d) = %v, want ErrBadCount", n, err)
		}
	}
	if err := f.Run(ctx); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

func TestRefusedLoginIsRetriedWithoutLeakingTokens(t *testing.T) {
	d := newFakeDispatcher(t)
	d.refuseLogins.Store(true)
	f, _, _ := startFleet(t, fast(d.srv.URL, 1))
	waitfor.Cond(t, "two refused logins", func() bool { return f.Status().Errors >= 2 })
	st := f.Status()
	if !strings.Contains(st.LastError, "unauthorized") {
		t.Errorf("last error = %q", st.LastError)
	}
	if st.States[StateBackoff]+st.States[StateStarting] != 1 {
		t.Errorf("states = %v", st.States)
	}
	d.refuseLogins.Store(false)
	waitfor.Cond(t, "queued after logins work again", func() bool { return f.Status().States[StateQueued] == 1 })
}

func TestBadTokenOnPlayLogsInAgain(t *testing.T) {
	d := newFakeDispatcher(t)
	f, _, _ := startFleet(t, fast(d.srv.URL, 1))
	waitfor.Cond(t, "queued", func() bool { return f.Status().States[StateQueued] == 1 })
	// The bot's token stops verifying (as after a secret rotation). The next
	// connection is refused, /v1/me says 401, and the bot logs in again.
	d.generation.Add(1)
	d.mu.Lock()
	for c := range d.conns {
		c.Close(1001, "restart")
	}
	d.mu.Unlock()
	waitfor.Cond(t, "a second login", func() bool { return d.logins.Load() >= 2 })
	waitfor.Cond(t, "queued again", func() bool { return f.Status().States[StateQueued] == 1 })
	if le := f.Status().LastError; strings.Contains(le, "token=") && !strings.Contains(le, "?…") {
		t.Errorf("an error shows a token: %q", le)
	}
}

func TestTokenNearExpiryLogsInAgain(t *testing.T) {
	d := newFakeDispatcher(t)
	d.tokenTTL.Store(61) // under a minute left after a second: log in again
	f, _, _ := startFleet(t, fast(d.srv.URL, 3))
	waitfor.Cond(t, "a fight", func() bool { return f.Status().Games >= 3 })
	waitfor.Cond(t, "new logins", func() bool { return d.logins.Load() > 3 })
}

func TestRoomFailedAndInRoomQueueAgain(t *testing.T) {
	d := newFakeDispatcher(t)
	d.failRooms.Store(true)
	d.inRoomOnce.Store(true)
	f, _, _ := startFleet(t, fast(d.srv.URL, 3))
	waitfor.Cond(t, "a fight after room_failed and in_room", func() bool { return f.Status().Games >= 3 })
	if q := d.queues.Load(); q < 5 {
		t.Errorf("queue requests = %d; room_failed and in_room should each cause one more", q)
	}
}

// TestBotsFollowTheirRoomPlacedAgain: the bots' fight sockets close
// without a result mid-room (as when the fight server dies) and the
// dispatcher sends each a match for the same room again (a room placed
// again from its saved state): the bots join it at once and finish it,
// and counting no failure.
func TestBotsFollowTheirRoomPlacedAgain(t *testing.T) {
	d := newFakeDispatcher(t)
	d.loseFirstRoom.Store(true)
	f, _, _ := startFleet(t, fast(d.srv.URL, 3))
	waitfor.Cond(t, "the first room finished", func() bool { return d.endReason("room-1") != "" })
	if r := d.endReason("room-1"); r != fightserver.ReasonLastStanding {
		t.Fatalf("the first room ended %q, want last_standing: the bots did not play it to the end", r)
	}
	waitfor.Cond(t, "the three bots' games counted", func() bool { return f.Status().Games >= 3 })
	if st := f.Status(); st.Errors != 0 {
		t.Fatalf("%d failures counted (last: %s); a room placed again is not one", st.Errors, st.LastError)
	}
}

// TestBotLateForItsRoomPlacedAgain: a bot whose room was placed again
// after its fight server went away, and which is back only after the
// others finished it (room_over), counts no failure and plays on.
func TestBotLateForItsRoomPlacedAgain(t *testing.T) {
	d := newFakeDispatcher(t)
	d.loseFirstRoom.Store(true)
	d.lateForFirstRoom.Store(true)
	f, _, _ := startFleet(t, fast(d.srv.URL, 3))
	waitfor.Cond(t, "the first room finished without its last member", func() bool { return d.endReason("room-1") != "" })
	waitfor.Cond(t, "a second room played", func() bool { return d.endReason("room-2") != "" })
	if st := f.Status(); st.Errors != 0 {
		t.Fatalf("%d failures counted (last: %s); a room that ended before the bot was back is not one", st.Errors, st.LastError)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{BaseURL: ""},
		{BaseURL: "ftp://x"},
		{BaseURL: "127.0.0.1:8080"},
		{BaseURL: "http://127.0.0.1:1", Count: -1},
		{BaseURL: "http://127.0.0.1:1", Count: MaxBots + 1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) = nil error", c)
		}
	}
	f, err := New(Config{BaseURL: "http://127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	if f.cfg.Photo != "http://127.0.0.1:1/static/img/bot.svg" {
		t.Errorf("photo = %q: an absolute URL on the dispatcher", f.cfg.Photo)
	}
}

func TestUnreachableDispatcherBacksOff(t *testing.T) {
	f, _, _ := startFleet(t, Config{BaseURL: "http://127.0.0.1:1", Count: 2})
	waitfor.Cond(t, "failures counted", func() bool { return f.Status().Errors >= 2 })
	if st := f.Status(); st.Games != 0 || st.Running != 2 {
		t.Errorf("status = %+v", st)
	}
}

func TestMetrics(t *testing.T) {
	d := newFakeDispatcher(t)
	f, _, _ := startFleet(t, fast(d.srv.URL, 3))
	reg := prometheus.NewRegistry()
	if err := reg.Register(f); err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "a fight", func() bool { return f.Status().Games >= 3 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"arena_bots", "arena_bots_games_total"} {
		if !names[n] {
			t.Errorf("metric %s missing (have %v)", n, names)
		}
	}
}

func TestBotName(t *testing.T) {
	if BotName(0) != "bot-Ada" || BotName(len(botNames)) != "bot-Ada2" || BotName(1) != "bot-Babbage" {
		t.Errorf("names: %s %s %s", BotName(0), BotName(len(botNames)), BotName(1))
	}
	seen := map[string]bool{}
	for i := 0; i < MaxBots; i++ {
		n := BotName(i)
		if seen[n] || len(n) > 32 {
			t.Fatalf("name %q repeated or too long", n)
		}
		seen[n] = true
	}
}
