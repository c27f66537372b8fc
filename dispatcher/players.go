package dispatcher

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/playerdb"
)

// Players is the player database as the dispatcher uses it:
// *playerdb.Cache (records read through memcached).
type Players interface {
	Player(ctx context.Context, id string) (playerdb.Player, error)
	EnsurePlayer(ctx context.Context, p playerdb.NewPlayer) (playerdb.Player, error)
	SetRating(ctx context.Context, p playerdb.NewPlayer, profile string, rating int) error
	Seen(ctx context.Context, id string) error
	Matches(ctx context.Context, id string, after playerdb.Cursor, limit int) ([]playerdb.Match, playerdb.Cursor, error)
	Leaderboard(ctx context.Context, profile string, offset, limit int) ([]playerdb.Entry, int, error)
	Place(ctx context.Context, profile, id string) (playerdb.Entry, error)
	ClaimAccount(ctx context.Context, id, account, hash string) error
	AccountCredentials(ctx context.Context, account string) (id, hash string, err error)
	PlayerCredentials(ctx context.Context, id string) (account, hash string, err error)
	ChangePassword(ctx context.Context, id, hash string, now time.Time) (validFrom int64, err error)
	RevokeTokens(ctx context.Context, id string, now time.Time) (validFrom int64, err error)
	// TokensValidFrom is read from the database on every call (never
	// from a cache): a revocation holds from the next request.
	TokensValidFrom(ctx context.Context, id string) (int64, error)
	Ping(ctx context.Context) error
}

// Outbox is the results outbox a dispatcher drains (results.Recorder):
// how many results wait for the database and whether its last try failed
// (for /healthz), and its metrics (served on /metrics).
type Outbox interface {
	Status() (pending int, failing bool)
	prometheus.Collector
}

// Page sizes of the lookups.
const (
	defaultMatchesLimit = 20
	defaultBoardLimit   = 10
)

// playerRoutes registers the public player lookups.
func (d *Dispatcher) playerRoutes() {
	d.mux.HandleFunc("GET /v1/players/{id}", d.handlePlayer)
	d.mux.HandleFunc("GET /v1/players/{id}/matches", d.handleMatches)
	d.mux.HandleFunc("GET /v1/leaderboard", d.handleLeaderboard)
}

// playersError writes the HTTP error for a player database error.
func (d *Dispatcher) playersError(w http.ResponseWriter, op string, err error) {
	switch {
	case errors.Is(err, playerdb.ErrNotFound):
		writeError(w, http.StatusNotFound, "unknown_player", "no such player")
	case errors.Is(err, playerdb.ErrInvalid):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		d.log.Error(op, "err", err)
		writeError(w, http.StatusServiceUnavailable, "database_unavailable", "the player database is unavailable; try again")
	}
}

// RatingJSON is one profile's standing in a public profile.
type RatingJSON struct {
	Score  int `json:"score"`
	Games  int `json:"games"`
	Wins   int `json:"wins"`
	Losses int `json:"losses"`
	Place  int `json:"place,omitempty"` // in the profile's leaderboard
}

// ProfileJSON is a player's public profile (GET /v1/players/{id}).
type ProfileJSON struct {
	UUID     string                `json:"uuid"`
	Username string                `json:"username"`
	Photo    string                `json:"photo"`
	Bot      bool                  `json:"bot"`
	Named    bool                  `json:"named"` // has an account (login name and password)
	Created  int64                 `json:"created"`
	LastSeen int64                 `json:"last_seen"`
	Score    int                   `json:"score"` // the rating in the default profile
	Games    int                   `json:"games"` // over every profile
	Wins     int                   `json:"wins"`
	Losses   int                   `json:"losses"`
	Ratings  map[string]RatingJSON `json:"ratings"`
}

func profileJSON(p playerdb.Player) ProfileJSON {
	out := ProfileJSON{UUID: p.ID, Username: p.Name, Photo: p.Photo, Bot: p.Bot, Named: p.Account != "",
		Created: p.Created.Unix(), LastSeen: p.LastSeen.Unix(), Score: p.RatingIn(""), Ratings: map[string]RatingJSON{}}
	out.Games, out.Wins, out.Losses = p.Totals()
	for prof, r := range p.Ratings {
		out.Ratings[prof] = RatingJSON{Score: r.Rating, Games: r.Games, Wins: r.Wins, Losses: r.Losses}
	}
	return out
}

// handlePlayer serves GET /v1/players/{id}: the public profile, with the
// player's place in each profile it is rated in.
func (d *Dispatcher) handlePlayer(w http.ResponseWriter, r *http.Request) {
	p, err := d.players.Player(r.Context(), r.PathValue("id"))
	if err != nil {
		d.playersError(w, "player lookup", err)
		return
	}
	out := profileJSON(p)
	for prof, rj := range out.Ratings {
		if e, err := d.players.Place(r.Context(), prof, p.ID); err == nil {
			rj.Place = e.Place
			out.Ratings[prof] = rj
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// MatchJSON is one match of a player's history.
type MatchJSON struct {
	Room    string            `json:"room"`
	Game    string            `json:"game"`
	Mode    string            `json:"mode"`
	Host    string            `json:"host"`
	Reason  string            `json:"reason"`
	Started int64             `json:"started"` // unix ms
	Ended   int64             `json:"ended"`   // unix ms
	Players []MatchPlayerJSON `json:"players"`
}

// MatchPlayerJSON is one player's line in a MatchJSON.
type MatchPlayerJSON struct {
	UUID     string  `json:"uuid"`
	Username string  `json:"username"`
	Place    int     `json:"place"`
	Score    float64 `json:"score"`
	Left     bool    `json:"left"`
	OldScore int     `json:"old_score"`
	NewScore int     `json:"new_score"`
}

// parseCursor reads a history cursor "ENDED_MS.ROOM".
func parseCursor(s string) (playerdb.Cursor, bool) {
	if s == "" {
		return playerdb.Cursor{}, true
	}
	ms, room, ok := strings.Cut(s, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n <= 0 || room == "" || len(room) > 64 {
		return playerdb.Cursor{}, false
	}
	return playerdb.Cursor{Ended: n, Room: room}, true
}

// pageParam reads an integer query parameter in [lo, hi], def when absent.
func pageParam(r *http.Request, name string, def, lo, hi int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= lo && n <= hi
}

// handleMatches serves GET /v1/players/{id}/matches?limit=N&after=CURSOR:
// the player's matches, newest first, and the cursor of the next page.
func (d *Dispatcher) handleMatches(w http.ResponseWriter, r *http.Request) {
	limit, ok := pageParam(r, "limit", defaultMatchesLimit, 1, playerdb.MaxPageLimit)
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_page", "limit must be 1 to "+strconv.Itoa(playerdb.MaxPageLimit))
		return
	}
	after, ok := parseCursor(r.URL.Query().Get("after"))
	if !ok {
		writeError(w, http.StatusBadRequest, "bad_page", "after must be a cursor from a previous page")
		return
	}
	ms, next, err := d.players.Matches(r.Context(), r.PathValue("id"), after, limit)
	if errors.Is(err, playerdb.ErrInvalid) {
		writeError(w, http.StatusBadRequest, "bad_page", "after must be a cursor from a previous page")
		return
	}
	if err != nil {
		d.playersError(w, "match history", err)
		return
	}
	out := struct {
		Matches []MatchJSON `json:"matches"`
		Next    *string     `json:"next"`
	}{Matches: make([]MatchJSON, 0, len(ms))}
	for _, m := range ms {
		mj := MatchJSON{Room: m.Room, Game: m.Game, Mode: m.Profile, Host: m.Host, Reason: m.Reason,
			Started: m.Started.UnixMilli(), Ended: m.Ended.UnixMilli()}
		for _, p := range m.Players {
			mj.Players = append(mj.Players, MatchPlayerJSON{UUID: p.ID, Username: p.Name, Place: p.Place, Score: p.Score,
				Left: p.Left, OldScore: p.Before, NewScore: p.After})
		}
		out.Matches = append(out.Matches, mj)
	}
	if next != (playerdb.Cursor{}) {
		s := strconv.FormatInt(next.Ended, 10) + "." + next.Room
		out.Next = &s
	}
	writeJSON(w, http.StatusOK, out)
}

// EntryJSON is one line of a leaderboard.
type EntryJSON struct {
	Place    int    `json:"place"`
	UUID     string `json:"uuid"`
	Username string `json:"username"`
	Bot      bool   `json:"bot"`
	Score    int    `json:"score"`
	Games    int    `json:"games"`
	Wins     int    `json:"wins"`
	Losses   int    `json:"losses"`
}

func entryJSON(e playerdb.Entry) EntryJSON {
	return EntryJSON{Place: e.Place, UUID: e.ID, Username: e.Name, Bot: e.Bot, Score: e.Rating, Games: e.Games, Wins: e.Wins, Losses: e.Losses}
}

// handleLeaderboard serves GET /v1/leaderboard?mode=M&limit=N&offset=O: a
// page of the mode's leaderboard and, for a caller with a player token,
// its own place ("me", null when it is not rated in the mode).
func (d *Dispatcher) handleLeaderboard(w http.ResponseWriter, r *http.Request) {
	mode := r.URL.Query().Get("mode")
	if !playerdb.ValidProfile(mode) {
		writeError(w, http.StatusBadRequest, "bad_mode", "mode must be up to 32 of [a-z0-9_-]")
		return
	}
	limit, ok1 := pageParam(r, "limit", defaultBoardLimit, 1, playerdb.MaxPageLimit)
	offset, ok2 := pageParam(r, "offset", 0, 0, playerdb.MaxBoardOffset)
	if !ok1 || !ok2 {
		writeError(w, http.StatusBadRequest, "bad_page", "limit must be 1 to "+strconv.Itoa(playerdb.MaxPageLimit)+
			" and offset 0 to "+strconv.Itoa(playerdb.MaxBoardOffset))
		return
	}
	var me *auth.Claims
	if bearer(r) != "" || r.URL.Query().Get("token") != "" {
		c, ok := d.playerFromRequest(w, r)
		if !ok {
			return
		}
		me = &c
	}
	entries, total, err := d.players.Leaderboard(r.Context(), mode, offset, limit)
	if err != nil {
		d.playersError(w, "leaderboard", err)
		return
	}
	out := struct {
		Mode    string      `json:"mode"`
		Total   int         `json:"total"`
		Offset  int         `json:"offset"`
		Entries []EntryJSON `json:"entries"`
		Me      *EntryJSON  `json:"me"`
	}{Mode: playerdb.NormProfile(mode), Total: total, Offset: offset, Entries: make([]EntryJSON, 0, len(entries))}
	for _, e := range entries {
		out.Entries = append(out.Entries, entryJSON(e))
	}
	if me != nil {
		e, err := d.players.Place(r.Context(), mode, me.Subject)
		switch {
		case err == nil:
			ej := entryJSON(e)
			out.Me = &ej
		case !errors.Is(err, playerdb.ErrNotFound):
			d.playersError(w, "leaderboard place", err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// health reports why the dispatcher is unhealthy, "" when it is not: the
// player database does not answer, or the results outbox it drains cannot
// reach it.
func (d *Dispatcher) health(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := d.players.Ping(ctx); err != nil {
		return "player database unavailable"
	}
	if d.outbox != nil {
		if n, failing := d.outbox.Status(); failing && n > 0 {
			return "results outbox: " + strconv.Itoa(n) + " results wait for the database"
		}
	}
	return ""
}
