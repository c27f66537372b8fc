package mapserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proc"
)

// TicketTTL is how long a map ticket (from Enter or a switch) may be used.
// An unused ticket leaves the record in transit; the player's next Enter
// re-points it.
const TicketTTL = 30 * time.Second

// ErrUnknownMap is proc.ErrUnknownMap: no map with that id in the world.
var ErrUnknownMap = proc.ErrUnknownMap

// ErrBadPlayer: the player claims have no usable uuid.
var ErrBadPlayer = errors.New("bad player identity")

// EnterAnswer tells a player where to connect.
type EnterAnswer struct {
	// Map is the map the player enters: its saved map when it has a
	// record, else the map asked for.
	Map string `json:"map"`
	// Addr is the map server's WebSocket URL, ws://host:port/ws; the
	// client appends ?ticket=Ticket.
	Addr   string `json:"addr"`
	Ticket string `json:"ticket"`
	// Resumed is true when the player had a saved state (position, hp,
	// inventory) and resumes it.
	Resumed bool `json:"resumed"`
}

// WebSocketURL returns the URL of the map server at host:port.
func WebSocketURL(addr string) string { return "ws://" + addr + "/ws" }

// Enter prepares player's entry onto the map world and returns the ticket
// for the map server that hosts the map the player resumes on. It is what
// the dispatcher's GET /v1/maps/{id}/enter calls, with player the verified
// claims of the caller's player token and loc its own placement (the
// host:port of a ready map server hosting the map, spawning or HostMap-ing
// as needed).
//
//   - A player with no record gets one at the spawn of mapID (the world's
//     start map when mapID is empty) with DefaultHP and an empty inventory.
//   - A player whose record is offline, in transit, or playing on a server
//     whose lease ran out (a dead server) resumes its saved map, position,
//     hp and inventory; mapID is then ignored (entering is not travel).
//   - A player whose record is owned by a live server gets ErrInMap.
//
// The record is re-pointed to the chosen server with a new version by
// compare-and-swap, so every ticket issued earlier becomes stale: at most
// one ticket can claim the record. Errors: ErrUnknownMap (mapID not in w),
// ErrInMap, ErrBadPlayer, the locator's and the store's errors.
func Enter(ctx context.Context, st store.Store, signer *auth.Signer, w *World, loc Locator, player auth.Claims, mapID string) (EnterAnswer, error) {
	var ans EnterAnswer
	if !ids.Valid(player.Subject) {
		return ans, fmt.Errorf("enter map: %w: uuid %q", ErrBadPlayer, player.Subject)
	}
	if mapID != "" && (!ids.Valid(mapID) || w.Map(mapID) == nil) {
		return ans, fmt.Errorf("enter map %q: %w", mapID, ErrUnknownMap)
	}
	if mapID == "" {
		mapID = w.Start
	}
	for attempt := 0; attempt < 8; attempt++ {
		s, cas, err := GetState(ctx, st, player.Subject)
		fresh := errors.Is(err, store.ErrNotFound)
		if err != nil && !fresh {
			return ans, fmt.Errorf("enter map: %w", err)
		}
		now := time.Now()
		if fresh {
			m := w.Map(mapID)
			s = State{UUID: player.Subject, Map: m.ID, X: m.Spawn.X, Y: m.Spawn.Y, HP: DefaultHP,
				Inventory: json.RawMessage(`{}`)}
		} else {
			if s.Status == StatusPlaying && now.UnixMilli() < s.Lease {
				return ans, fmt.Errorf("enter map: %w: %s on %s", ErrInMap, s.Map, s.Owner)
			}
			ans.Resumed = true
			if m := w.Map(s.Map); m == nil || !m.InBounds(Point{s.X, s.Y}) || m.PortalAt(Point{s.X, s.Y}) != nil {
				// The world changed under the record: resume at a spawn.
				if m == nil {
					m = w.Map(mapID)
				}
				s.Map, s.X, s.Y = m.ID, m.Spawn.X, m.Spawn.Y
			}
		}
		addr, err := loc.Locate(ctx, s.Map)
		if err != nil {
			return ans, fmt.Errorf("enter map %s: locate: %w", s.Map, err)
		}
		s.UUID = player.Subject
		if player.Name != "" {
			s.Name = player.Name
		}
		s.Version++
		s.Status = StatusTransit
		s.Owner, s.OwnerID, s.Lease, s.From = "", "", 0, ""
		s.Target = addr
		s.Updated = now.UnixMilli()
		if fresh {
			err = st.Add(ctx, encodeState(s))
		} else {
			err = casState(ctx, st, s, cas)
		}
		if errors.Is(err, store.ErrNotStored) || errors.Is(err, store.ErrCASConflict) || errors.Is(err, store.ErrNotFound) {
			continue // raced another writer: read again
		}
		if err != nil {
			return ans, fmt.Errorf("enter map: %w", err)
		}
		ticket, err := mintTicket(signer, s, player)
		if err != nil {
			return ans, fmt.Errorf("enter map: %w", err)
		}
		ans.Map, ans.Addr, ans.Ticket = s.Map, WebSocketURL(addr), ticket
		return ans, nil
	}
	return ans, fmt.Errorf("enter map: %w", store.ErrCASConflict)
}

// mintTicket mints the map ticket that claims transit record s.
func mintTicket(signer *auth.Signer, s State, player auth.Claims) (string, error) {
	name := s.Name
	if name == "" {
		name = player.Name
	}
	return signer.Mint(auth.KindMap, auth.Claims{
		Subject: s.UUID, Name: name, Photo: player.Photo, Bot: player.Bot,
		Map: s.Map, Addr: s.Target, Version: s.Version,
	}, TicketTTL)
}
