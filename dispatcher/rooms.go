package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/arena-game/arena/fightserver"
	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/sdk"
)

// roomTimeout is how long a fight room lasts at most: the fight option
// room-timeout, or the fight server's default.
func (d *Dispatcher) roomTimeout() time.Duration {
	if t, ok := proc.DurationOption(d.cfg.Fight.GetRoomTimeout()); ok && t > 0 {
		return t
	}
	return fightserver.DefaultRoomTimeout
}

// roomTTL is how long room tokens live: the room timeout plus slack.
func (d *Dispatcher) roomTTL() time.Duration { return d.roomTimeout() + 5*time.Minute }

// handoffRoom places a formed room: it picks the least-loaded fight server
// (spawning when all are full) and assigns the room over the plugin
// channel, writes the room to memcached (players, hp 100, one hour), and
// returns the "match" message for each member with a room token bound to
// uuid, room and expiry.
func (d *Dispatcher) handoffRoom(ctx context.Context, fr matchmaking.FormedRoom) (map[string]matchmaking.MatchMsg, error) {
	fr.ID = "r" + auth.RandomID(8)
	ttl := d.roomTTL()
	room := proc.Room{ID: fr.ID, Game: fr.Game, Profile: fr.Profile, Mode: fr.Profile, Expires: time.Now().Add(ttl)}
	for _, p := range fr.Players {
		room.Players = append(room.Players, proc.Player{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: p.Score, Bot: p.Bot})
	}
	pl, err := d.fleet.PlaceRoom(ctx, room)
	if err != nil {
		return nil, err
	}
	fight := "ws://" + d.addrFor(pl, d.publicHost(nil)) + "/ws"
	rec := records.Room{ID: fr.ID, Mode: fr.Profile, Game: fr.Game, Expires: room.Expires.Unix(), Fight: fight, Port: pl.Port, State: records.RoomAssigned, Created: time.Now().Unix()}
	for _, p := range fr.Players {
		rec.Players = append(rec.Players, records.RoomPlayer{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: p.Score, HP: 100, Bot: p.Bot})
	}
	if err := records.PutRoom(ctx, d.store, rec); err != nil {
		// The fight server has the room; the record is a convenience for
		// readers and rejoin, so a store hiccup does not cancel the match.
		d.log.Warn("room record not saved", "room", fr.ID, "err", err)
	}
	out := make(map[string]matchmaking.MatchMsg, len(fr.Players))
	for _, p := range fr.Players {
		tok, err := d.signer.Mint(auth.KindRoom, auth.Claims{Subject: p.UUID, Name: p.Username, Photo: p.Photo, Room: fr.ID, Addr: fight, Bot: p.Bot}, ttl)
		if err != nil {
			return nil, fmt.Errorf("handoff room %s: %w", fr.ID, err)
		}
		out[p.UUID] = matchmaking.MatchMsg{Type: "match", Room: fr.ID, Fight: fight, Ticket: tok, Players: fr.Players, Mode: fr.Profile, Profile: fr.Profile}
	}
	d.log.Info("room formed", "room", fr.ID, "host", pl.Host, "port", pl.Port, "players", len(fr.Players), "spread", fr.Spread, "mode", fr.Profile)
	return out, nil
}

// roomFailed marks a room whose fight server died as failed in memcached.
func (d *Dispatcher) roomFailed(room string, _ []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := records.UpdateRoom(ctx, d.store, room, func(r *records.Room) error {
		if r.State == records.RoomEnded {
			return nil
		}
		r.State, r.Reason, r.Ended = records.RoomFailed, "fight_server_died", time.Now().Unix()
		return nil
	})
	if err != nil {
		d.log.Warn("room not marked failed", "room", room, "err", err)
	}
}

// backfillRoom adds queued players to a running room: the fight process
// hosting it accepts them (and tells the room who joined), the room
// record lists them after its members (so a room placed again from its
// record, see placeAgain, has them), and each gets a "match" message for
// that room with a room token.
func (d *Dispatcher) backfillRoom(ctx context.Context, br matchmaking.BackfillRoom) (map[string]matchmaking.MatchMsg, error) {
	joining := make([]proc.Player, 0, len(br.Joining))
	for _, p := range br.Joining {
		joining = append(joining, proc.Player{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: p.Score, Bot: p.Bot})
	}
	pl, err := d.fleet.Backfill(ctx, br.ID, joining)
	if err != nil {
		return nil, err
	}
	if _, err := records.UpdateRoom(ctx, d.store, br.ID, func(r *records.Room) error {
		for _, p := range br.Joining {
			if !slices.ContainsFunc(r.Players, func(q records.RoomPlayer) bool { return q.UUID == p.UUID }) {
				r.Players = append(r.Players, records.RoomPlayer{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: p.Score, HP: 100, Bot: p.Bot})
			}
		}
		return nil
	}); err != nil {
		// The room has the players; without them in the record the room
		// cannot be placed again if its process dies.
		d.log.Warn("room record: backfilled players not saved", "room", br.ID, "err", err)
	}
	fight := "ws://" + d.addrFor(pl, d.publicHost(nil)) + "/ws"
	ttl := d.roomTTL()
	all := append(append([]matchmaking.Player(nil), br.Members...), br.Joining...)
	out := make(map[string]matchmaking.MatchMsg, len(br.Joining))
	for _, p := range br.Joining {
		tok, err := d.signer.Mint(auth.KindRoom, auth.Claims{Subject: p.UUID, Name: p.Username, Photo: p.Photo, Room: br.ID, Addr: fight, Bot: p.Bot}, ttl)
		if err != nil {
			return nil, fmt.Errorf("backfill room %s: %w", br.ID, err)
		}
		out[p.UUID] = matchmaking.MatchMsg{Type: "match", Room: br.ID, Fight: fight, Ticket: tok, Players: all, Profile: br.Profile, Mode: br.Profile}
	}
	d.log.Info("room backfilled", "room", br.ID, "host", pl.Host, "port", pl.Port, "joined", len(br.Joining))
	return out, nil
}

// errRoomNotRunning: a room record of a room that ended or failed.
var errRoomNotRunning = errors.New("room not running")

// lookupRoom describes a running room from its record (for a room an
// earlier dispatcher formed that asks for backfill): its profile, game
// and players with the ratings they were matched at.
func (d *Dispatcher) lookupRoom(ctx context.Context, room string) (matchmaking.FormedRoom, error) {
	rec, _, err := records.GetRoom(ctx, d.store, room)
	if err != nil {
		return matchmaking.FormedRoom{}, fmt.Errorf("look up room %s: %w", room, err)
	}
	if rec.State != records.RoomAssigned && rec.State != records.RoomPlaying {
		return matchmaking.FormedRoom{}, fmt.Errorf("look up room %s: %w (%s)", room, errRoomNotRunning, rec.State)
	}
	fr := matchmaking.FormedRoom{ID: rec.ID, Profile: rec.Mode, Game: rec.Game}
	if fr.Profile == "" {
		fr.Profile = matchmaking.DefaultProfile
	}
	for _, p := range rec.Players {
		fr.Players = append(fr.Players, matchmaking.Player{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: p.Score, Bot: p.Bot})
	}
	return fr, nil
}

// addrFor is the host:port players use for a placement: a process on the
// dispatcher's machine under localHost (the host the player reached the
// dispatcher on, or --public-host), one elsewhere under its host's
// advertised address.
func (d *Dispatcher) addrFor(pl fleet.Placement, localHost string) string {
	if pl.Local {
		return net.JoinHostPort(localHost, strconv.Itoa(pl.Port))
	}
	return pl.Addr()
}

// chatAddr is the host:port of the chat server, if the fleet runs one.
func (d *Dispatcher) chatAddr(localHost string) (string, bool) {
	for _, p := range d.fleet.Snapshot() {
		if p.Kind == proc.KindChat && p.State == hostctl.Ready {
			return d.addrFor(p.Placement(), localHost), true
		}
	}
	return "", false
}

// processGone handles the rooms of a process that died: a room whose game
// saved its state (sdk Room.Save) is placed again on another process of
// its game, which restores it, and its players get a new match for the
// same room; every other room failed (its players are told room_failed).
func (d *Dispatcher) processGone(p fleet.Proc, units []string) {
	var failed []string
	for _, room := range units {
		if err := d.placeAgain(room); err != nil {
			if !errors.Is(err, errNoSnapshot) {
				d.log.Warn("room could not be placed again; it failed", "room", room, "err", err)
			}
			failed = append(failed, room)
		}
	}
	if len(failed) > 0 {
		d.mm.ProcessGone(p.Port, failed, d.roomFailed)
	}
}

var errNoSnapshot = errors.New("no saved state")

// placeAgain assigns room, from its record, to a live process of its game
// when its game state was saved, and pushes each member a match with a
// new ticket for the new address.
func (d *Dispatcher) placeAgain(room string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := d.store.Get(ctx, sdk.SnapshotKey(room)); err != nil {
		return fmt.Errorf("place room %s again: %w", room, errNoSnapshot)
	}
	rec, _, err := records.GetRoom(ctx, d.store, room)
	if err != nil {
		return fmt.Errorf("place room %s again: %w", room, err)
	}
	if rec.State == records.RoomEnded || rec.State == records.RoomFailed {
		return fmt.Errorf("place room %s again: the room is %s", room, rec.State)
	}
	expires := time.Unix(rec.Expires, 0)
	if rec.Expires == 0 || !expires.After(time.Now()) {
		return fmt.Errorf("place room %s again: its tickets have expired", room)
	}
	pr := proc.Room{ID: room, Game: rec.Game, Profile: rec.Mode, Mode: rec.Mode, Expires: expires}
	players := make([]matchmaking.Player, 0, len(rec.Players))
	for _, p := range rec.Players {
		pr.Players = append(pr.Players, proc.Player{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: p.Score, Bot: p.Bot})
		players = append(players, matchmaking.Player{UUID: p.UUID, Username: p.Username, Photo: p.Photo, Score: p.Score, Bot: p.Bot})
	}
	pl, err := d.fleet.PlaceRoom(ctx, pr)
	if err != nil {
		return fmt.Errorf("place room %s again: %w", room, err)
	}
	fight := "ws://" + d.addrFor(pl, d.publicHost(nil)) + "/ws"
	if _, err := records.UpdateRoom(ctx, d.store, room, func(r *records.Room) error {
		r.Fight, r.Port = fight, pl.Port
		return nil
	}); err != nil {
		d.log.Warn("room record not updated", "room", room, "err", err)
	}
	for _, p := range players {
		tok, err := d.signer.Mint(auth.KindRoom, auth.Claims{Subject: p.UUID, Name: p.Username, Photo: p.Photo, Room: room, Addr: fight, Bot: p.Bot}, time.Until(expires))
		if err != nil {
			return fmt.Errorf("place room %s again: %w", room, err)
		}
		d.sessions.Notify(p.UUID, matchmaking.MatchMsg{Type: "match", Room: room, Fight: fight, Ticket: tok, Players: players, Mode: rec.Mode, Profile: rec.Mode})
	}
	game := rec.Game
	if game == "" {
		game = "fight" // records leave the built-in fight unnamed
	}
	d.log.Info("room placed again after its process died; its game state was restored", "room", room, "game", game, "host", pl.Host, "port", pl.Port)
	return nil
}
