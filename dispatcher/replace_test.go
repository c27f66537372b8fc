package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
)

// A player's queue entry belongs to the player, not to the socket that
// queued: a replacement socket takes it over (the replaced socket's close
// leaves it queued), and when the player's last socket closes the entry is
// cancelled.
func TestReplacementSocketOwnsQueueEntry(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.Match.Tick = time.Hour })
	ctx := tctx(t)
	a := td.login(t, "owner")
	first := td.play(t, a.Token)
	_ = first.SendJSON(map[string]any{"type": "queue"})
	if err := first.RecvType(ctx, "queued", nil); err != nil {
		t.Fatal(err)
	}
	second := td.play(t, a.Token)
	if code := recvErrCode(t, first); code != "replaced" {
		t.Fatalf("first socket: %s, want replaced", code)
	}
	select {
	case <-first.Done():
	case <-ctx.Done():
		t.Fatal("replaced socket not closed")
	}
	// The replaced socket's close does not cancel: the entry is the player's.
	_ = second.SendJSON(map[string]any{"type": "status"})
	var st struct{ Queue struct{ State string } }
	if err := second.RecvType(ctx, "status", &st); err != nil {
		t.Fatal(err)
	}
	if st.Queue.State != "queued" {
		t.Fatalf("after the replaced socket closed: %q, want queued", st.Queue.State)
	}
	second.Close(wsconn.CloseNormal, "bye")
	waitfor.Cond(t, "the entry cancelled", func() bool { return td.mm.Status(context.Background(), a.UUID).State == "none" })
}
