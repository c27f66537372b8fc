package dispatcher

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/mapserver"
	"github.com/arena-game/arena/proc"
)

// mapRoutes registers the map world API.
func (d *Dispatcher) mapRoutes() {
	d.mux.HandleFunc("GET /v1/maps", d.handleMaps)
	d.mux.HandleFunc("GET /v1/maps/{id}/enter", d.minting(d.handleEnterMap))
	d.mux.HandleFunc("POST /v1/maps/{id}/enter", d.minting(d.handleEnterMap))
}

func (d *Dispatcher) startMap() string {
	if d.world == nil {
		return ""
	}
	return d.world.Start
}

// handleMaps serves GET /v1/maps: the world's maps (id, name, size, portals).
func (d *Dispatcher) handleMaps(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"start": d.world.Start, "maps": d.world.Maps})
}

// handleEnterMap serves /v1/maps/{id}/enter with a player token: it places
// the map (get|map|ID: an instance with room, spawning when needed) and
// prepares the player's entry (mapserver.Enter): a fresh player starts at
// the map's spawn; a player with saved state resumes it on its saved map.
// Answers {"map","addr","ticket","resumed"}.
func (d *Dispatcher) handleEnterMap(w http.ResponseWriter, r *http.Request) {
	c, ok := d.playerFromRequest(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	if id == "start" || id == "_" {
		id = ""
	}
	if id != "" && (!ids.Valid(id) || d.world.Map(id) == nil) {
		writeError(w, http.StatusNotFound, "unknown_map", "no map "+strconv.Quote(id))
		return
	}
	host := d.publicHost(r)
	loc := mapserver.LocatorFunc(func(ctx context.Context, mapID string) (string, error) {
		pl, err := d.fleet.PlaceMap(ctx, mapID)
		if err != nil {
			return "", err
		}
		return d.addrFor(pl, host), nil
	})
	ans, err := mapserver.Enter(r.Context(), d.store, d.signer, d.world, loc, c, id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ans)
	case errors.Is(err, proc.ErrUnknownMap):
		writeError(w, http.StatusNotFound, "unknown_map", "no such map")
	case errors.Is(err, mapserver.ErrInMap):
		writeError(w, http.StatusConflict, "in_map", "this player is playing on a map server now; close that connection first")
	case errors.Is(err, fleet.ErrNoCapacity):
		writeError(w, http.StatusServiceUnavailable, "no_capacity", "no map server could take the player")
	default:
		d.log.Error("enter map", "err", err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", "could not place the player")
	}
}
