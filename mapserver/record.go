package mapserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// Record statuses. A record moves playing -> transit (a switch or a drain
// handoff by its owner) -> playing (claimed by the next server), or
// playing -> offline (the player left; the owner's final save), and Enter
// re-points offline, transit and dead-owner records to transit.
const (
	StatusPlaying = "playing" // owned by the server in Owner/OwnerID while Lease lasts
	StatusTransit = "transit" // owned by nobody; claimable once, by the server in Target, with Version
	StatusOffline = "offline" // owned by nobody; the player left cleanly
)

// DefaultHP is a new player's hp.
const DefaultHP = 100

// Sentinel errors of the handoff. Callers check them with errors.Is; the
// WebSocket edge maps them to error codes (see docs/maps.md).
var (
	// ErrInMap: a live map server owns the player's record (the player is
	// playing somewhere); Enter refuses to hand out a second ticket.
	ErrInMap = errors.New("player is in a map on a live server")
	// ErrStaleTicket: the ticket names a record version that is no longer
	// current (a replayed ticket, or one superseded by a later Enter).
	ErrStaleTicket = errors.New("stale ticket")
	// ErrAlreadyClaimed: another connection claimed the record first.
	ErrAlreadyClaimed = errors.New("already claimed")
	// ErrOwnershipLost: the record changed under its owner (another server
	// claimed it, or the owner's lease ran out); the owner must drop the
	// player.
	ErrOwnershipLost = errors.New("ownership lost")
)

// State is a player's map state: the versioned handoff record stored at
// StateKey(uuid), with no expiry. Every write increments Version and is a
// compare-and-swap against the version the writer read (see docs/maps.md,
// "Handoff").
type State struct {
	UUID string `json:"uuid"`
	Name string `json:"name,omitempty"`
	// Map is the map the player is on (playing, offline) or arriving on
	// (transit); X, Y its position there (the arrival point in transit).
	Map string  `json:"map"`
	X   float64 `json:"x"`
	Y   float64 `json:"y"`
	HP  int     `json:"hp"`
	// Inventory is opaque JSON that map servers carry without reading.
	Inventory json.RawMessage `json:"inventory,omitempty"`
	Version   uint64          `json:"ver"`
	Status    string          `json:"status"`
	// Owner is the owning server's host:port and OwnerID its process boot
	// id (playing only).
	Owner   string `json:"owner,omitempty"`
	OwnerID string `json:"owner_id,omitempty"`
	// Target is the host:port of the server that may claim a transit
	// record; From the map the player left.
	Target string `json:"target,omitempty"`
	From   string `json:"from,omitempty"`
	// Lease (unix ms) is when a playing record's owner is presumed dead if
	// it has not saved again: the owner writes now + 3 save intervals on
	// every save.
	Lease int64 `json:"lease,omitempty"`
	// Updated is the unix ms time of this write.
	Updated int64 `json:"updated"`
}

// StateKey is the store key of uuid's map state.
func StateKey(uuid string) string { return "mapstate:" + uuid }

// GetState reads uuid's map state and its CAS id; ErrNotFound (wrapped)
// when the player has none.
func GetState(ctx context.Context, st store.Store, uuid string) (State, uint64, error) {
	var s State
	cas, err := store.GetJSON(ctx, st, StateKey(uuid), &s)
	if err != nil {
		return s, 0, fmt.Errorf("get map state %s: %w", uuid, err)
	}
	return s, cas, nil
}

func encodeState(s State) *store.Item {
	b, _ := json.Marshal(s) // State has no unmarshalable fields
	return &store.Item{Key: StateKey(s.UUID), Value: b}
}

// casState writes s over the record read with cas.
func casState(ctx context.Context, st store.Store, s State, cas uint64) error {
	it := encodeState(s)
	it.CAS = cas
	return st.CompareAndSwap(ctx, it)
}

// owner identifies a map server process as a record owner.
type owner struct {
	Addr string // host:port
	ID   string // boot id, unique per process start
	// is reports whether a host:port names this server (nil: only Addr).
	is func(addr string) bool
}

func (o owner) names(addr string) bool {
	if addr == o.Addr {
		return true
	}
	return o.is != nil && o.is(addr)
}

// claimState makes o the owner of uuid's transit record, which must be at
// version ver, for map mapID, targeted at o.Addr. It returns the record
// as written (Version ver+1, playing, leased until lease). Errors:
// ErrStaleTicket (the record is at another version, not in transit, for
// another map or server, or gone), ErrAlreadyClaimed (lost a race for the
// same version), or a store error.
func claimState(ctx context.Context, st store.Store, uuid, mapID string, ver uint64, o owner, lease time.Time) (State, error) {
	s, cas, err := GetState(ctx, st, uuid)
	if errors.Is(err, store.ErrNotFound) {
		return s, fmt.Errorf("claim map state: %w: no record", ErrStaleTicket)
	}
	if err != nil {
		return s, fmt.Errorf("claim map state: %w", err)
	}
	switch {
	case s.Version == ver+1 && s.Status == StatusPlaying && s.Map == mapID && s.OwnerID == o.ID:
		// The version this ticket names was claimed already, here.
		return s, fmt.Errorf("claim map state: %w: version %d is owned", ErrAlreadyClaimed, ver)
	case s.Version != ver:
		return s, fmt.Errorf("claim map state: %w: ticket version %d, record version %d", ErrStaleTicket, ver, s.Version)
	case s.Status != StatusTransit:
		return s, fmt.Errorf("claim map state: %w: record is %s", ErrStaleTicket, s.Status)
	case s.Map != mapID || !o.names(s.Target):
		return s, fmt.Errorf("claim map state: %w: record is for %s on %s", ErrStaleTicket, s.Map, s.Target)
	}
	s.Version++
	s.Status = StatusPlaying
	s.Owner, s.OwnerID = o.Addr, o.ID
	s.Target, s.From = "", ""
	now := time.Now()
	s.Lease = lease.UnixMilli()
	s.Updated = now.UnixMilli()
	if err := casState(ctx, st, s, cas); err != nil {
		if errors.Is(err, store.ErrCASConflict) || errors.Is(err, store.ErrNotFound) {
			return s, fmt.Errorf("claim map state: %w", ErrAlreadyClaimed)
		}
		return s, fmt.Errorf("claim map state: %w", err)
	}
	return s, nil
}

// updateOwned rewrites a record o owns. mine is the record as o last wrote
// it; the stored record must still be that version and owned by o.ID, or
// ErrOwnershipLost. fn edits a copy of the stored record; the result is
// written with Version+1 and compare-and-swap (a conflict is re-checked
// once: if the record moved to another owner, ErrOwnershipLost).
func updateOwned(ctx context.Context, st store.Store, mine State, o owner, fn func(*State)) (State, error) {
	return updateOwnedFrom(ctx, st, mine, o, nil, fn)
}

// updateOwnedFrom is updateOwned starting from pre, the record as a
// GetMulti just read it (nil: read it first).
func updateOwnedFrom(ctx context.Context, st store.Store, mine State, o owner, pre *store.Item, fn func(*State)) (State, error) {
	for attempt := 0; attempt < 3; attempt++ {
		var s State
		var cas uint64
		var err error
		if pre != nil && attempt == 0 {
			cas = pre.CAS
			if err = json.Unmarshal(pre.Value, &s); err != nil {
				err = fmt.Errorf("decode: %w", err)
			}
		} else {
			s, cas, err = GetState(ctx, st, mine.UUID)
		}
		if errors.Is(err, store.ErrNotFound) {
			return s, fmt.Errorf("save map state: %w: record gone", ErrOwnershipLost)
		}
		if err != nil {
			return s, fmt.Errorf("save map state: %w", err)
		}
		if s.Version != mine.Version || s.OwnerID != o.ID || s.Status != StatusPlaying {
			if pre != nil && attempt == 0 {
				continue // the batch read may predate our own last write: read again
			}
			return s, fmt.Errorf("save map state: %w: record at version %d (%s, owner %s), ours %d", ErrOwnershipLost, s.Version, s.Status, s.Owner, mine.Version)
		}
		fn(&s)
		s.Version++
		s.Updated = time.Now().UnixMilli()
		err = casState(ctx, st, s, cas)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, store.ErrCASConflict) && !errors.Is(err, store.ErrNotFound) {
			return s, fmt.Errorf("save map state: %w", err)
		}
	}
	return mine, fmt.Errorf("save map state: %w: contended", ErrOwnershipLost)
}
