// Package records defines the records arena keeps in memcached that more
// than one process reads or writes, their keys, and safe read-modify-write
// helpers. Key layout (all under the arena's store prefix):
//
//	player:UUID        Player (rating, profile), no expiry
//	room:ROOMID        Room (members, hp, state, fight server), 1 hour
//	fleet:table        the dispatcher's process table (JSON), refreshed on change
//	revoked:UUID       when the player's tokens are valid from (unix s, decimal), 30 days
//
// Map handoff records and chat history are owned by mapserver and
// chatserver and documented there.
package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/arena-game/arena/internal/store"
)

// DefaultRating is a new player's rating.
const DefaultRating = 1500

// Player is a player's durable record.
type Player struct {
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Photo    string `json:"photo,omitempty"`
	Rating   int    `json:"score"`
	Games    int    `json:"games"`
	Wins     int    `json:"wins"`
	Bot      bool   `json:"bot,omitempty"`
	Updated  int64  `json:"updated"`
}

// Room states.
const (
	RoomAssigned = "assigned" // handed to a fight server, players not all in yet
	RoomPlaying  = "playing"
	RoomEnded    = "ended"
	RoomFailed   = "failed" // its fight server died; players were told
)

// RoomTTL is how long a room record lives (as the seed caches it).
const RoomTTL = time.Hour

// RoomPlayer is one member's state in a room.
type RoomPlayer struct {
	UUID     string  `json:"uuid"`
	Username string  `json:"username"`
	Photo    string  `json:"photo,omitempty"`
	Score    int     `json:"score"`
	HP       int     `json:"hp"`
	X        float64 `json:"x,omitempty"`
	Y        float64 `json:"y,omitempty"`
	Bot      bool    `json:"bot,omitempty"`
}

// Room is a fight's shared record.
type Room struct {
	ID      string       `json:"id"`
	Mode    string       `json:"mode,omitempty"`
	Game    string       `json:"game,omitempty"`    // the game hosting it ("" = fight)
	Expires int64        `json:"expires,omitempty"` // when its tickets expire (unix s)
	Fight   string       `json:"fight"`             // ws://host:port/ws
	Port    int          `json:"port"`              // fight server port (process table key)
	State   string       `json:"state"`
	Players []RoomPlayer `json:"players"`
	Created int64        `json:"created"`
	Ended   int64        `json:"ended,omitempty"`
	Winner  string       `json:"winner,omitempty"`
	Reason  string       `json:"reason,omitempty"`
}

// PlayerKey is the store key of uuid's record.
func PlayerKey(uuid string) string { return "player:" + uuid }

// RoomKey is the store key of a room.
func RoomKey(id string) string { return "room:" + id }

// FleetKey is the store key of the dispatcher's process table.
const FleetKey = "fleet:table"

// GetPlayer reads uuid's record; a player never seen gets ErrNotFound
// (wrapped); callers default the rating to DefaultRating.
func GetPlayer(ctx context.Context, s store.Store, uuid string) (Player, uint64, error) {
	var p Player
	cas, err := store.GetJSON(ctx, s, PlayerKey(uuid), &p)
	if err != nil {
		return p, 0, fmt.Errorf("get player %s: %w", uuid, err)
	}
	return p, cas, nil
}

// UpdatePlayer applies fn to uuid's record (a fresh record with
// DefaultRating when there is none) and stores it with compare-and-swap,
// retrying on conflicts, so concurrent updates never lose each other.
func UpdatePlayer(ctx context.Context, s store.Store, uuid string, fn func(*Player)) (Player, error) {
	for attempt := 0; attempt < 16; attempt++ {
		p, cas, err := GetPlayer(ctx, s, uuid)
		fresh := errors.Is(err, store.ErrNotFound)
		if err != nil && !fresh {
			return p, err
		}
		if fresh {
			p = Player{UUID: uuid, Rating: DefaultRating}
		}
		fn(&p)
		p.UUID = uuid
		p.Updated = time.Now().Unix()
		b, _ := json.Marshal(p)
		it := &store.Item{Key: PlayerKey(uuid), Value: b, CAS: cas}
		if fresh {
			err = s.Add(ctx, it)
		} else {
			err = s.CompareAndSwap(ctx, it)
		}
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, store.ErrCASConflict) && !errors.Is(err, store.ErrNotStored) && !errors.Is(err, store.ErrNotFound) {
			return p, fmt.Errorf("update player %s: %w", uuid, err)
		}
	}
	return Player{}, fmt.Errorf("update player %s: %w", uuid, store.ErrCASConflict)
}

// GetRoom reads a room record.
func GetRoom(ctx context.Context, s store.Store, id string) (Room, uint64, error) {
	var r Room
	cas, err := store.GetJSON(ctx, s, RoomKey(id), &r)
	if err != nil {
		return r, 0, fmt.Errorf("get room %s: %w", id, err)
	}
	return r, cas, nil
}

// PutRoom writes a room record unconditionally, with RoomTTL.
func PutRoom(ctx context.Context, s store.Store, r Room) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("put room %s: %w", r.ID, err)
	}
	if err := s.Set(ctx, &store.Item{Key: RoomKey(r.ID), Value: b, TTL: RoomTTL}); err != nil {
		return fmt.Errorf("put room %s: %w", r.ID, err)
	}
	return nil
}

// UpdateRoom applies fn to the room with compare-and-swap, retrying on
// conflicts. ErrNotFound (wrapped) if the room is gone.
func UpdateRoom(ctx context.Context, s store.Store, id string, fn func(*Room) error) (Room, error) {
	for attempt := 0; attempt < 16; attempt++ {
		r, cas, err := GetRoom(ctx, s, id)
		if err != nil {
			return r, err
		}
		if err := fn(&r); err != nil {
			return r, err
		}
		b, _ := json.Marshal(r)
		err = s.CompareAndSwap(ctx, &store.Item{Key: RoomKey(id), Value: b, TTL: RoomTTL, CAS: cas})
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, store.ErrCASConflict) {
			return r, fmt.Errorf("update room %s: %w", id, err)
		}
	}
	return Room{}, fmt.Errorf("update room %s: %w", id, store.ErrCASConflict)
}

// RevokedKey is the key of a copy of the second from which a player's
// tokens are valid, for the servers that verify player tokens without the
// player database (chat); the database is the authority.
func RevokedKey(uuid string) string { return "revoked:" + uuid }

// PutTokensValidFrom records that uuid's player tokens issued (iat) before
// from are revoked, for ttl (the longest a token lives: a revoked token
// has expired by then).
func PutTokensValidFrom(ctx context.Context, s store.Store, uuid string, from int64, ttl time.Duration) error {
	if err := s.Set(ctx, &store.Item{Key: RevokedKey(uuid), Value: strconv.AppendInt(nil, from, 10), TTL: ttl}); err != nil {
		return fmt.Errorf("put tokens valid from %s: %w", uuid, err)
	}
	return nil
}

// TokensValidFrom returns the second from which uuid's player tokens are
// valid as PutTokensValidFrom recorded it: 0 when nothing is recorded
// (never revoked, expired, or lost with a memcached server).
func TokensValidFrom(ctx context.Context, s store.Store, uuid string) (int64, error) {
	it, err := s.Get(ctx, RevokedKey(uuid))
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get tokens valid from %s: %w", uuid, err)
	}
	from, err := strconv.ParseInt(string(it.Value), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("get tokens valid from %s: %w", uuid, err)
	}
	return from, nil
}
