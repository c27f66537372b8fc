package playerdb

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/arena-game/arena/internal/ids"
)

// validate checks r and normalises its profile and names.
func (r *Result) validate() error {
	if !validID(r.Room) {
		return fmt.Errorf("%w: room id must be "+ids.Rule, ErrInvalid)
	}
	if !ValidProfile(r.Profile) {
		return fmt.Errorf("%w: profile must be 0-%d of [a-z0-9_-]", ErrInvalid, MaxProfileLen)
	}
	r.Profile = NormProfile(r.Profile)
	if len(r.Game) > 64 || len(r.Host) > 255 || len(r.Reason) > 64 {
		return fmt.Errorf("%w: game, host or reason too long", ErrInvalid)
	}
	if len(r.Players) == 0 || len(r.Players) > MaxPlayers {
		return fmt.Errorf("%w: a result has 1-%d players", ErrInvalid, MaxPlayers)
	}
	seen := make(map[string]bool, len(r.Players))
	for i := range r.Players {
		p := &r.Players[i]
		np := NewPlayer{ID: p.UUID, Name: p.Name, Photo: p.Photo, Bot: p.Bot}
		if err := np.validate(); err != nil {
			return fmt.Errorf("player %d: %w", i, err)
		}
		p.Name = np.Name
		if seen[p.UUID] {
			return fmt.Errorf("%w: player %s appears twice", ErrInvalid, p.UUID)
		}
		seen[p.UUID] = true
		if p.Rank < 1 || p.Rank > MaxPlayers {
			return fmt.Errorf("%w: player %s: rank must be 1-%d", ErrInvalid, p.UUID, MaxPlayers)
		}
	}
	return nil
}

// Apply records r exactly once: in one transaction it records the match,
// creates missing player records, reads the players' current ratings in
// r.Profile (DefaultRating for a player new to it) under their row locks,
// computes the Elo changes from the players' ranks (EloDeltas, EloK; a
// rating never drops below 0), and writes the new ratings, games, wins
// and losses and every player's line of the match history. If r.Room is
// already recorded nothing changes and the changes recorded then are
// returned with Duplicate set. A result with a single player is recorded
// with its rating unchanged. A malformed result is ErrInvalid and changes
// nothing.
func (db *DB) Apply(ctx context.Context, r Result) (Applied, error) {
	r.Players = slices.Clone(r.Players) // validate normalises names in place
	if err := r.validate(); err != nil {
		return Applied{}, fmt.Errorf("apply result: %w", err)
	}
	// Lock order: players by id, then the histogram by rating.
	ps := r.Players
	slices.SortFunc(ps, func(a, b PlayerResult) int { return strings.Compare(a.UUID, b.UUID) })
	var out Applied
	err := db.write(ctx, "apply result "+r.Room, func(tx *sql.Tx) error {
		out = Applied{Ratings: make(map[string]RatingChange, len(ps))}
		now := db.now().UnixMilli()
		res, err := tx.ExecContext(ctx, db.q(`INSERT INTO matches (room, game, profile, host, reason, started_ms, ended_ms, recorded_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room) DO NOTHING`),
			r.Room, r.Game, r.Profile, r.Host, r.Reason, ms(r.Started), ms(r.Ended), now)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			out.Duplicate = true
			return db.recordedChanges(ctx, tx, r.Room, out.Ratings)
		}
		newPlayers := make([]NewPlayer, len(ps))
		ids := make([]string, len(ps))
		for i, p := range ps {
			newPlayers[i] = NewPlayer{ID: p.UUID, Name: p.Name, Photo: p.Photo, Bot: p.Bot}
			ids[i] = p.UUID
		}
		if err := db.upsertPlayers(ctx, tx, newPlayers, now); err != nil {
			return err
		}
		old, err := db.readRatings(ctx, tx, r.Profile, ids)
		if err != nil {
			return err
		}
		before := make([]int, len(ps))
		ranks := make([]int, len(ps))
		best, atBest := MaxPlayers+1, 0
		for i, p := range ps {
			before[i], ranks[i] = DefaultRating, p.Rank
			if v, ok := old[p.UUID]; ok {
				before[i] = v
			}
			switch {
			case p.Rank < best:
				best, atBest = p.Rank, 1
			case p.Rank == best:
				atBest++
			}
		}
		deltas := EloDeltas(before, ranks, EloK)
		counts := make(map[int]int64, 2*len(ps))
		rateArgs := make([]any, 0, len(ps)*7)
		histArgs := make([]any, 0, len(ps)*9)
		for i, p := range ps {
			after := max(0, before[i]+deltas[i])
			out.Ratings[p.UUID] = RatingChange{Before: before[i], After: after}
			if _, had := old[p.UUID]; had {
				counts[before[i]]--
			}
			counts[after]++
			win, loss := 0, 0
			if len(ps) > 1 {
				if p.Rank == best && atBest == 1 {
					win = 1
				} else if p.Rank > best {
					loss = 1
				}
			}
			rateArgs = append(rateArgs, p.UUID, r.Profile, after, 1, win, loss, now)
			histArgs = append(histArgs, r.Room, p.UUID, p.Name, p.Rank, p.Score, p.Left, before[i], after, ms(r.Ended))
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO ratings (player_id, profile, rating, games, wins, losses, updated_ms) VALUES `+
			placeholders(len(ps), 7)+` ON CONFLICT (player_id, profile) DO UPDATE SET rating = excluded.rating,
				games = ratings.games + 1, wins = ratings.wins + excluded.wins, losses = ratings.losses + excluded.losses,
				updated_ms = excluded.updated_ms`), rateArgs...); err != nil {
			return err
		}
		if err := db.addCounts(ctx, tx, r.Profile, counts); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO match_players (room, player_id, name, place, score, left_early,
			rating_before, rating_after, ended_ms) VALUES `+placeholders(len(ps), 9)), histArgs...)
		return err
	})
	if err != nil {
		return Applied{}, err
	}
	return out, nil
}

// recordedChanges fills into with the rating changes recorded for room.
func (db *DB) recordedChanges(ctx context.Context, tx *sql.Tx, room string, into map[string]RatingChange) error {
	rows, err := tx.QueryContext(ctx, db.q("SELECT player_id, rating_before, rating_after FROM match_players WHERE room = ?"), room)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var c RatingChange
		if err := rows.Scan(&id, &c.Before, &c.After); err != nil {
			return err
		}
		into[id] = c
	}
	return rows.Err()
}

// Check reports whether Apply would accept r: nil, or an error wrapping
// ErrInvalid that says what is wrong.
func (r Result) Check() error {
	r.Players = slices.Clone(r.Players)
	return r.validate()
}
