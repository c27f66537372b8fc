package matchmaking

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
)

// recorder is a Notifier that keeps every message per player.
type recorder struct {
	mu   sync.Mutex
	msgs map[string][]any
}

func (r *recorder) Notify(uuid string, msg any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msgs == nil {
		r.msgs = map[string][]any{}
	}
	r.msgs[uuid] = append(r.msgs[uuid], msg)
}

// placeAll is a Handoff that places every room on an imaginary server.
func placeAll(_ context.Context, fr FormedRoom) (map[string]MatchMsg, error) {
	out := map[string]MatchMsg{}
	for _, p := range fr.Players {
		out[p.UUID] = MatchMsg{Type: "match", Room: "r-" + fr.Players[0].UUID, Fight: "ws://fight/ws", Players: fr.Players}
	}
	return out, nil
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestMatchmaker(t *testing.T, cfg Config, h Handoff) (*Matchmaker, *recorder) {
	t.Helper()
	if h == nil {
		h = placeAll
	}
	rec := &recorder{}
	m, err := NewMatchmaker(cfg, rec, h, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m, rec
}

func TestTakeoverMovesTheEntryToTheNewSocket(t *testing.T) {
	m, _ := newTestMatchmaker(t, Config{Tick: time.Hour}, nil)
	ctx := context.Background()
	if _, err := m.Enqueue(ctx, Enqueue{Player: Player{UUID: "p1", Score: 1500}, Source: SourcePlay, Session: 1}); err != nil {
		t.Fatal(err)
	}
	if err := m.Takeover(ctx, "p1", 2); err != nil {
		t.Fatal(err)
	}
	if err := m.Cancel(ctx, "p1", 1); !errors.Is(err, ErrNotQueued) {
		t.Fatalf("the replaced socket's close cancelled the entry: %v", err)
	}
	if st := m.Status(ctx, "p1"); st.State != StateQueued {
		t.Fatalf("state %+v, want queued", st)
	}
	if err := m.Cancel(ctx, "p1", 2); err != nil {
		t.Fatalf("the owning socket's close: %v", err)
	}
	if st := m.Status(ctx, "p1"); st.State != StateNone {
		t.Fatalf("state %+v, want none", st)
	}
	// A backend's ticket is never taken over by a socket.
	if _, err := m.Enqueue(ctx, Enqueue{Player: Player{UUID: "b1", Score: 1500}, Source: SourceBackend}); err != nil {
		t.Fatal(err)
	}
	_ = m.Takeover(ctx, "b1", 3)
	if err := m.Cancel(ctx, "b1", 3); !errors.Is(err, ErrNotQueued) {
		t.Fatalf("a socket cancelled a backend ticket: %v", err)
	}
}

func TestFullMailboxRefusesWithErrBusy(t *testing.T) {
	rec := &recorder{}
	m, err := NewMatchmaker(Config{Tick: time.Hour}, rec, placeAll, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	// Not running: nothing drains the mailbox.
	for i := 0; i < requestCap; i++ {
		if err := m.inbox.Post(func() {}); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, err := m.Enqueue(ctx, Enqueue{Player: Player{UUID: "p1"}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("enqueue on a full mailbox: %v, want ErrBusy", err)
	}
	// Events are dropped (and counted), not queued, when their mailbox
	// is full.
	for i := 0; i < eventCap; i++ {
		_ = m.events.Post(func() {})
	}
	m.RoomEnded("r1")
	if n, r := m.events.Len(), m.events.Rejected(); n != eventCap || r != 1 {
		t.Fatalf("events mailbox holds %d with %d rejected, want %d and 1", n, r, eventCap)
	}
}

func TestMatchReachesEveryMember(t *testing.T) {
	m, rec := newTestMatchmaker(t, Config{Tick: 5 * time.Millisecond}, nil)
	ctx := context.Background()
	for _, u := range []string{"a", "b", "c"} {
		if _, err := m.Enqueue(ctx, Enqueue{Player: Player{UUID: u, Score: 1500}, Source: SourcePlay, Session: 1}); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.Cond(t, "c in a room", func() bool { return m.Status(ctx, "c").State == StateInRoom })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, u := range []string{"a", "b", "c"} {
		if len(rec.msgs[u]) != 1 {
			t.Fatalf("%s got %v", u, rec.msgs[u])
		}
		if mm, ok := rec.msgs[u][0].(*MatchMsg); !ok || len(mm.Players) != 3 || mm.UUID != u {
			t.Fatalf("%s got %+v", u, rec.msgs[u][0])
		}
	}
}
