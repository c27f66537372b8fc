package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/arena-game/arena/internal/records"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/playerdb"
)

// End reasons the SDK itself gives (a game may use any reason of its own,
// [a-z_]{1,32}).
const (
	ReasonTimeout   = "timeout"   // the room timeout passed (TimeoutHandler or a draw)
	ReasonAbandoned = "abandoned" // every player is gone and the game did not end the room: unrated
	ReasonNoShow    = "no_show"   // nobody ever connected: unrated
	ReasonError     = "error"     // the game panicked in a callback: unrated
	ReasonStuck     = "stuck"     // a callback ran past Config.CallbackDeadline: unrated
	ReasonShutdown  = "shutdown"  // the process stopped: unrated, players told server_shutdown
)

// Result is how a room ended. The game fills Reason and Players (see
// Room.End); the SDK fills the rest before handing it to the Recorder.
type Result struct {
	Room    string
	Game    string
	Profile string // the room's mode
	Host    string // the process's advertised host:port
	Started time.Time
	Ended   time.Time
	// Reason is why the room ended ("last_standing", "timeout", ...).
	Reason string
	// Unrated results change no rating (no_show, error, stuck, shutdown,
	// abandoned; a game may set it too).
	Unrated bool
	// Players is every member, best placed first after Room.End.
	Players []PlayerResult
}

// PlayerResult is one member's line of a Result.
type PlayerResult struct {
	UUID string
	// Rank is the placement, 1 best; equal ranks drew.
	Rank int
	// Score is the game's own per-player score (kills, points, hp left).
	Score float64
	// Left reports that the player quit or lost its seat before the end.
	Left bool
	// Extra fields are added to the player's entry of the result message
	// clients receive (e.g. "hp"); keys the SDK writes itself are ignored.
	Extra map[string]any
}

// Recorder is results.Recorder's shape: it stores a room's result and
// rates its players exactly once per room id (playerdb.Result, Elo inside
// the database transaction), answering the rating changes, or an error
// wrapping results.ErrPending when the result is safe but not stored yet.
// The SDK calls it once per rated room, from the room's goroutine, with a
// deadline; unrated results (see Result.Unrated) are not recorded.
type Recorder interface {
	Record(ctx context.Context, r playerdb.Result) (playerdb.Applied, error)
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(ctx context.Context, r playerdb.Result) (playerdb.Applied, error)

// Record implements Recorder.
func (f RecorderFunc) Record(ctx context.Context, r playerdb.Result) (playerdb.Applied, error) {
	return f(ctx, r)
}

// StoreRecorder rates players in the shared store (memcached): it reads
// each player's record, applies the Elo changes of the ranking
// (playerdb.EloDeltas, K = 32, docs/fight.md "Ratings") with a
// compare-and-swap per player, and counts games and wins (a win is a sole
// first place). It is a process's recorder while its start request names
// no database; it is not idempotent across retries.
type StoreRecorder struct {
	Store store.Store
	// Players gives a player's assigned rating for a record that does not
	// exist yet (uuid -> Player).
	Players func(uuid string) *Player
}

// Record implements Recorder.
func (s StoreRecorder) Record(ctx context.Context, r playerdb.Result) (playerdb.Applied, error) {
	out := playerdb.Applied{Ratings: make(map[string]playerdb.RatingChange, len(r.Players))}
	if len(r.Players) < 2 {
		return out, nil
	}
	olds := make([]int, len(r.Players))
	ranks := make([]int, len(r.Players))
	for i, pr := range r.Players {
		ranks[i] = pr.Rank
		olds[i] = records.DefaultRating
		if p := s.player(pr.UUID); p != nil && p.Rating > 0 {
			olds[i] = p.Rating
		}
		rec, _, err := records.GetPlayer(ctx, s.Store, pr.UUID)
		switch {
		case err == nil:
			olds[i] = rec.Rating
		case !errors.Is(err, store.ErrNotFound):
			return out, fmt.Errorf("record result %s: read rating of %s: %w", r.Room, pr.UUID, err)
		}
	}
	deltas := playerdb.EloDeltas(olds, ranks, playerdb.EloK)
	winners := 0
	for _, pr := range r.Players {
		if pr.Rank == 1 {
			winners++
		}
	}
	var firstErr error
	for i, pr := range r.Players {
		won := pr.Rank == 1 && winners == 1
		rec, err := records.UpdatePlayer(ctx, s.Store, pr.UUID, func(rec *records.Player) {
			if rec.Updated == 0 { // a fresh record: start from the rating the room was formed with
				rec.Rating, rec.Bot = olds[i], pr.Bot
			}
			if rec.Username == "" {
				rec.Username, rec.Photo = pr.Name, pr.Photo
			}
			rec.Rating = max(0, rec.Rating+deltas[i])
			rec.Games++
			if won {
				rec.Wins++
			}
		})
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("record result %s: update rating of %s: %w", r.Room, pr.UUID, err)
			}
			continue
		}
		out.Ratings[pr.UUID] = playerdb.RatingChange{Before: rec.Rating - deltas[i], After: rec.Rating}
	}
	return out, firstErr
}

func (s StoreRecorder) player(uuid string) *Player {
	if s.Players == nil {
		return nil
	}
	return s.Players(uuid)
}

// resultPlayer is one entry of the result message.
type resultPlayer struct {
	UUID     string  `json:"uuid"`
	Username string  `json:"username"`
	Place    int     `json:"place"`
	Score    float64 `json:"score"`
	OldScore int     `json:"old_score"`
	NewScore int     `json:"new_score"`
	Left     bool    `json:"left,omitempty"`
}

var sdkKeys = map[string]bool{"uuid": true, "username": true, "place": true, "score": true, "old_score": true, "new_score": true, "left": true}

// resultMessage encodes the {"type":"result"} message every player gets:
// room, reason, winner (the sole first place, or ""), unrated, and the
// players best first with their place, game score, rating before and
// after (equal when unrated or not known yet) and the game's Extra fields.
func resultMessage(res Result, names func(string) (string, int), ap playerdb.Applied, pending bool) []byte {
	var b []byte
	b = append(b, `{"type":"result","room":`...)
	b = appendJSON(b, res.Room)
	b = append(b, `,"reason":`...)
	b = appendJSON(b, res.Reason)
	b = append(b, `,"winner":`...)
	b = appendJSON(b, winnerOf(res))
	if res.Unrated {
		b = append(b, `,"unrated":true`...)
	}
	if pending {
		b = append(b, `,"pending":true`...)
	}
	b = append(b, `,"players":[`...)
	for i, pr := range res.Players {
		if i > 0 {
			b = append(b, ',')
		}
		name, rating := names(pr.UUID)
		rp := resultPlayer{UUID: pr.UUID, Username: name, Place: pr.Rank, Score: pr.Score, OldScore: rating, NewScore: rating, Left: pr.Left}
		if ch, ok := ap.Ratings[pr.UUID]; ok {
			rp.OldScore, rp.NewScore = ch.Before, ch.After
		}
		e, _ := json.Marshal(rp)
		if len(pr.Extra) > 0 {
			extra := make(map[string]any, len(pr.Extra))
			for k, v := range pr.Extra {
				if !sdkKeys[k] {
					extra[k] = v
				}
			}
			if x, err := json.Marshal(extra); err == nil && len(x) > 2 {
				e = append(append(e[:len(e)-1], ','), x[1:]...)
			}
		}
		b = append(b, e...)
	}
	return append(b, "]}"...)
}

func appendJSON(b []byte, v any) []byte {
	x, _ := json.Marshal(v)
	return append(b, x...)
}

// winnerOf is the sole player ranked first, or "".
func winnerOf(res Result) string {
	w := ""
	for _, p := range res.Players {
		if p.Rank == 1 {
			if w != "" {
				return ""
			}
			w = p.UUID
		}
	}
	return w
}

// normalize completes a game's result: unknown and repeated uuids are
// dropped, ranks below 1 become 1, members the game left out are added
// after the last rank (marked Left when gone), and the list is sorted
// best first (stable).
func (r *Room) normalize(res Result) Result {
	seen := make(map[string]bool, len(r.players))
	out := make([]PlayerResult, 0, len(r.players))
	worst := 0
	for _, p := range res.Players {
		if r.byUUID[p.UUID] == nil || seen[p.UUID] {
			continue
		}
		seen[p.UUID] = true
		p.Rank = max(p.Rank, 1)
		worst = max(worst, p.Rank)
		out = append(out, p)
	}
	for _, p := range r.players {
		if !seen[p.UUID] {
			out = append(out, PlayerResult{UUID: p.UUID, Rank: worst + 1, Left: p.state == Gone})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Rank < out[j].Rank })
	res.Players = out
	if res.Reason == "" {
		res.Reason = "ended"
	}
	return res
}

// Ranking builds a Result from groups of uuids, best first: every uuid of
// groups[0] is ranked 1, of groups[1] next (after as many places as
// groups[0] took), and so on, so ties are groups.
func Ranking(reason string, groups ...[]string) Result {
	res := Result{Reason: reason}
	rank := 1
	for _, g := range groups {
		for _, id := range g {
			res.Players = append(res.Players, PlayerResult{UUID: id, Rank: rank})
		}
		rank += len(g)
	}
	return res
}
