package playerdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Cursor marks a place in a player's match history: matches that ended
// before Ended (unix ms), or at Ended with a room id before Room. The zero
// Cursor is the newest end.
type Cursor struct {
	Ended int64
	Room  string
}

// Matches returns up to limit (1-MaxPageLimit) of the player's matches,
// newest first, starting after cursor, and the cursor of the next page
// (the zero Cursor when this page is the last). A player with no record is
// ErrNotFound.
func (db *DB) Matches(ctx context.Context, id string, after Cursor, limit int) ([]Match, Cursor, error) {
	if limit < 1 || limit > MaxPageLimit || after.Ended < 0 || after.Room != "" && !validID(after.Room) {
		return nil, Cursor{}, fmt.Errorf("match history: %w: limit must be 1-%d", ErrInvalid, MaxPageLimit)
	}
	if err := db.exists(ctx, id); err != nil {
		return nil, Cursor{}, fmt.Errorf("match history: %w", err)
	}
	query := "SELECT room, ended_ms FROM match_players WHERE player_id = ?"
	args := []any{id}
	if after.Ended != 0 || after.Room != "" {
		query += " AND (ended_ms < ? OR ended_ms = ? AND room < ?)"
		args = append(args, after.Ended, after.Ended, after.Room)
	}
	query += " ORDER BY ended_ms DESC, room DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.sql.QueryContext(ctx, db.q(query), args...)
	if err != nil {
		return nil, Cursor{}, unavailable("match history", err)
	}
	var rooms []string
	var ends []int64
	for rows.Next() {
		var room string
		var end int64
		if err := rows.Scan(&room, &end); err != nil {
			rows.Close()
			return nil, Cursor{}, unavailable("match history", err)
		}
		rooms, ends = append(rooms, room), append(ends, end)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, Cursor{}, unavailable("match history", err)
	}
	var next Cursor
	if len(rooms) > limit {
		rooms, ends = rooms[:limit], ends[:limit]
		next = Cursor{Ended: ends[limit-1], Room: rooms[limit-1]}
	}
	if len(rooms) == 0 {
		return []Match{}, next, nil
	}
	ms, err := db.matches(ctx, rooms)
	if err != nil {
		return nil, Cursor{}, unavailable("match history", err)
	}
	return ms, next, nil
}

// Match returns one recorded match; ErrNotFound if the room is not
// recorded.
func (db *DB) Match(ctx context.Context, room string) (Match, error) {
	if !validID(room) {
		return Match{}, fmt.Errorf("get match: %w", ErrNotFound)
	}
	ms, err := db.matches(ctx, []string{room})
	if err != nil {
		return Match{}, unavailable("get match", err)
	}
	if len(ms) == 0 {
		return Match{}, fmt.Errorf("get match %s: %w", room, ErrNotFound)
	}
	return ms[0], nil
}

// matches loads the matches of rooms, in the order given (unrecorded rooms
// are left out).
func (db *DB) matches(ctx context.Context, rooms []string) ([]Match, error) {
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rooms)), ", ") + ")"
	args := make([]any, len(rooms))
	for i, r := range rooms {
		args[i] = r
	}
	byRoom := make(map[string]*Match, len(rooms))
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT room, game, profile, host, reason, started_ms, ended_ms
		FROM matches WHERE room IN `+in), args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		m := &Match{}
		var started, ended int64
		if err := rows.Scan(&m.Room, &m.Game, &m.Profile, &m.Host, &m.Reason, &started, &ended); err != nil {
			rows.Close()
			return nil, err
		}
		m.Started, m.Ended = fromMS(started), fromMS(ended)
		byRoom[m.Room] = m
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.sql.QueryContext(ctx, db.q(`SELECT room, player_id, name, place, score, left_early, rating_before, rating_after
		FROM match_players WHERE room IN `+in+` ORDER BY room, place, player_id`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var room string
		var p MatchPlayer
		if err := rows.Scan(&room, &p.ID, &p.Name, &p.Place, &p.Score, &p.Left, &p.Before, &p.After); err != nil {
			return nil, err
		}
		if m := byRoom[room]; m != nil {
			m.Players = append(m.Players, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Match, 0, len(rooms))
	for _, r := range rooms {
		if m := byRoom[r]; m != nil {
			out = append(out, *m)
		}
	}
	return out, nil
}

// exists is nil when the player has a record, ErrNotFound when not.
func (db *DB) exists(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	var one int
	err := db.sql.QueryRowContext(ctx, db.q("SELECT 1 FROM players WHERE id = ?"), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return unavailable("find player", err)
	}
	return nil
}

// Leaderboard returns up to limit (1-MaxPageLimit) entries of profile's
// leaderboard from offset (0-MaxBoardOffset), best first (equal ratings by
// player id), and how many players the profile has.
func (db *DB) Leaderboard(ctx context.Context, profile string, offset, limit int) ([]Entry, int, error) {
	if !ValidProfile(profile) || limit < 1 || limit > MaxPageLimit || offset < 0 || offset > MaxBoardOffset {
		return nil, 0, fmt.Errorf("leaderboard: %w: limit must be 1-%d and offset 0-%d", ErrInvalid, MaxPageLimit, MaxBoardOffset)
	}
	profile = NormProfile(profile)
	var total sql.NullInt64
	if err := db.sql.QueryRowContext(ctx, db.q("SELECT SUM(n) FROM rating_shards WHERE profile = ?"), profile).Scan(&total); err != nil {
		return nil, 0, unavailable("leaderboard", err)
	}
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT r.player_id, p.display_name, p.bot, r.rating, r.games, r.wins, r.losses
		FROM ratings r JOIN players p ON p.id = r.player_id
		WHERE r.profile = ? ORDER BY r.rating DESC, r.player_id LIMIT ? OFFSET ?`), profile, limit, offset)
	if err != nil {
		return nil, 0, unavailable("leaderboard", err)
	}
	defer rows.Close()
	out := []Entry{}
	for rows.Next() {
		var e Entry
		if err := rows.Scan(&e.ID, &e.Name, &e.Bot, &e.Rating, &e.Games, &e.Wins, &e.Losses); err != nil {
			return nil, 0, unavailable("leaderboard", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, unavailable("leaderboard", err)
	}
	for i := range out {
		switch {
		case i > 0 && out[i].Rating == out[i-1].Rating:
			out[i].Place = out[i-1].Place
		case i > 0 || offset == 0:
			out[i].Place = offset + i + 1
		default:
			above, err := db.countAbove(ctx, profile, out[i].Rating)
			if err != nil {
				return nil, 0, err
			}
			out[i].Place = above + 1
		}
	}
	return out, int(total.Int64), nil
}

// Place returns the player's entry in profile's leaderboard; ErrNotFound
// if it has no rating there.
func (db *DB) Place(ctx context.Context, profile, id string) (Entry, error) {
	if !ValidProfile(profile) || !validID(id) {
		return Entry{}, fmt.Errorf("leaderboard place: %w", ErrNotFound)
	}
	profile = NormProfile(profile)
	e := Entry{ID: id}
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT p.display_name, p.bot, r.rating, r.games, r.wins, r.losses
		FROM ratings r JOIN players p ON p.id = r.player_id WHERE r.profile = ? AND r.player_id = ?`), profile, id).
		Scan(&e.Name, &e.Bot, &e.Rating, &e.Games, &e.Wins, &e.Losses)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, fmt.Errorf("leaderboard place: %w", ErrNotFound)
	}
	if err != nil {
		return Entry{}, unavailable("leaderboard place", err)
	}
	above, err := db.countAbove(ctx, profile, e.Rating)
	if err != nil {
		return Entry{}, err
	}
	e.Place = above + 1
	return e, nil
}

// countAbove counts the profile's players rated above rating, from the
// histogram (a sum over at most one row per distinct rating).
func (db *DB) countAbove(ctx context.Context, profile string, rating int) (int, error) {
	var n sql.NullInt64
	if err := db.sql.QueryRowContext(ctx, db.q("SELECT SUM(n) FROM rating_shards WHERE profile = ? AND rating > ?"),
		profile, rating).Scan(&n); err != nil {
		return 0, unavailable("leaderboard place", err)
	}
	return int(n.Int64), nil
}
