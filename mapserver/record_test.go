package mapserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// TestUpdateOwnedStalePrefetch: a batch read older than our own last
// write is read again, not taken for a lost record; a fresh read that
// shows another owner is.
func TestUpdateOwnedStalePrefetch(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	me := owner{Addr: "127.0.0.1:1", ID: "me"}
	s := State{UUID: "u1", Map: "town", Version: 5, Status: StatusPlaying, Owner: me.Addr, OwnerID: me.ID}
	if err := st.Set(ctx, encodeState(s)); err != nil {
		t.Fatal(err)
	}
	stale, _ := st.Get(ctx, StateKey("u1"))
	mine, err := updateOwned(ctx, st, s, me, func(r *State) { r.X = 1 })
	if err != nil || mine.Version != 6 {
		t.Fatalf("first save: %+v %v", mine, err)
	}
	mine, err = updateOwnedFrom(ctx, st, mine, me, stale, func(r *State) { r.X = 2 })
	if err != nil || mine.Version != 7 || mine.X != 2 {
		t.Fatalf("save from a stale batch read: %+v %v", mine, err)
	}
	other := mine
	other.Version, other.OwnerID = 8, "other"
	if err := st.Set(ctx, encodeState(other)); err != nil {
		t.Fatal(err)
	}
	fresh, _ := st.Get(ctx, StateKey("u1"))
	if _, err := updateOwnedFrom(ctx, st, mine, me, fresh, func(r *State) {}); !errors.Is(err, ErrOwnershipLost) {
		t.Fatalf("save over another owner: %v", err)
	}
	// Claims refuse the wrong version, status and map.
	tr := State{UUID: "u2", Map: "cave", Version: 3, Status: StatusTransit, Target: me.Addr}
	_ = st.Set(ctx, encodeState(tr))
	lease := time.Now().Add(time.Second)
	if _, err := claimState(ctx, st, "u2", "cave", 2, me, lease); !errors.Is(err, ErrStaleTicket) {
		t.Fatalf("claim old version: %v", err)
	}
	if _, err := claimState(ctx, st, "u2", "town", 3, me, lease); !errors.Is(err, ErrStaleTicket) {
		t.Fatalf("claim other map: %v", err)
	}
	if _, err := claimState(ctx, st, "u2", "cave", 3, owner{Addr: "127.0.0.1:2", ID: "x"}, lease); !errors.Is(err, ErrStaleTicket) {
		t.Fatalf("claim for another server: %v", err)
	}
	got, err := claimState(ctx, st, "u2", "cave", 3, me, lease)
	if err != nil || got.Version != 4 || got.Status != StatusPlaying || got.OwnerID != "me" {
		t.Fatalf("claim: %+v %v", got, err)
	}
	if _, err := claimState(ctx, st, "u2", "cave", 3, me, lease); !errors.Is(err, ErrAlreadyClaimed) {
		t.Fatalf("claim twice: %v", err)
	}
	if _, err := claimState(ctx, st, "nobody", "cave", 1, me, lease); !errors.Is(err, ErrStaleTicket) {
		t.Fatalf("claim without a record: %v", err)
	}
}
