package playerdb

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

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
//
// Results applied at the same moment share one transaction (group
// commit: one commit, one fsync, the hot histogram rows locked once), each
// result applied in turn inside it; if that transaction fails, each of its
// results is applied again in a transaction of its own, so one result's
// failure is never another's. Apply returns when its result is committed,
// or when ctx ends first (ErrUnavailable; the result may still commit: a
// later Apply of it reports Duplicate).
func (db *DB) Apply(ctx context.Context, r Result) (Applied, error) {
	r.Players = slices.Clone(r.Players) // validate normalises names in place
	if err := r.validate(); err != nil {
		return Applied{}, fmt.Errorf("apply result: %w", err)
	}
	req := &applyReq{r: r, done: make(chan struct{})}
	select {
	case db.applyQ <- req:
	case <-ctx.Done():
		return Applied{}, fmt.Errorf("apply result %s: %w: %v", r.Room, ErrUnavailable, ctx.Err())
	case <-db.closed:
		return Applied{}, fmt.Errorf("apply result %s: %w: database closed", r.Room, ErrUnavailable)
	}
	select {
	case <-req.done:
		return req.out, req.err
	case <-ctx.Done():
		return Applied{}, fmt.Errorf("apply result %s: %w: %v", r.Room, ErrUnavailable, ctx.Err())
	case <-db.closed:
		return Applied{}, fmt.Errorf("apply result %s: %w: database closed", r.Room, ErrUnavailable)
	}
}

// applyReq is one Apply waiting for its batch.
type applyReq struct {
	r    Result
	out  Applied
	err  error
	done chan struct{}
}

// Batching limits: a batch holds at most maxBatch results; its
// transaction gets batchTimeout.
const (
	maxBatch     = 64
	batchTimeout = 10 * time.Second
)

// committer applies queued results in batches until the database closes.
func (db *DB) committer() {
	defer db.committers.Done()
	for {
		var first *applyReq
		select {
		case first = <-db.applyQ:
		case <-db.closed:
			return
		}
		batch := []*applyReq{first}
	collect:
		for len(batch) < maxBatch {
			select {
			case r := <-db.applyQ:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		db.applyBatch(batch)
	}
}

// applyBatch applies batch in one transaction; when that fails, each
// result alone.
func (db *DB) applyBatch(batch []*applyReq) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	if len(batch) > 1 {
		outs := make([]Applied, len(batch))
		err := db.write(ctx, "apply results", func(tx *sql.Tx) error { return db.applyTx(ctx, tx, batch, outs) })
		if err == nil {
			for i, req := range batch {
				req.out = outs[i]
				close(req.done)
			}
			return
		}
	}
	for _, req := range batch {
		outs := make([]Applied, 1)
		req.err = db.write(ctx, "apply result "+req.r.Room, func(tx *sql.Tx) error {
			return db.applyTx(ctx, tx, []*applyReq{req}, outs)
		})
		req.out = outs[0]
		close(req.done)
	}
}

// ratingKey names one player's rating in one profile.
type ratingKey struct{ id, profile string }

// standing is a rating as the batch changes it.
type standing struct {
	rating              int
	existed             bool // the row exists (in the database or written earlier in the batch)
	games, wins, losses int  // added by this batch
	changed             bool
}

// applyTx applies the results of batch in tx, in order, filling outs,
// with a handful of statements for the whole batch: players, matches
// (RETURNING the rooms new to the database), the ratings read under lock,
// the ratings written, the history lines, the histogram. A room recorded
// before, or earlier in the batch, is a duplicate answered with the
// changes recorded for it. Lock order (PostgreSQL): every player of the
// batch by id, then ratings by (player, profile), then the histogram rows
// by rating, so concurrent batches never deadlock.
func (db *DB) applyTx(ctx context.Context, tx *sql.Tx, batch []*applyReq, outs []Applied) error {
	now := db.now().UnixMilli()
	seen := map[string]bool{}
	var everyone []NewPlayer
	for _, req := range batch {
		for _, p := range req.r.Players {
			if !seen[p.UUID] {
				seen[p.UUID] = true
				everyone = append(everyone, NewPlayer{ID: p.UUID, Name: p.Name, Photo: p.Photo, Bot: p.Bot})
			}
		}
	}
	slices.SortFunc(everyone, func(a, b NewPlayer) int { return strings.Compare(a.ID, b.ID) })
	if err := db.upsertPlayers(ctx, tx, everyone, now); err != nil {
		return err
	}

	// The matches: which rooms are new to the database.
	margs := make([]any, 0, len(batch)*8)
	for _, req := range batch {
		r := req.r
		margs = append(margs, r.Room, r.Game, r.Profile, r.Host, r.Reason, ms(r.Started), ms(r.Ended), now)
	}
	rows, err := tx.QueryContext(ctx, db.q(`INSERT INTO matches (room, game, profile, host, reason, started_ms, ended_ms, recorded_ms)
		VALUES `+placeholders(len(batch), 8)+` ON CONFLICT (room) DO NOTHING RETURNING room`), margs...)
	if err != nil {
		return err
	}
	fresh := map[string]bool{}
	for rows.Next() {
		var room string
		if err := rows.Scan(&room); err != nil {
			rows.Close()
			return err
		}
		fresh[room] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// The first of the batch's results of a new room applies; the rest
	// of that room's, and every result of a room recorded before, are
	// duplicates.
	first := map[string]int{}
	var applyIdx, oldDup []int
	for i, req := range batch {
		room := req.r.Room
		if _, dup := first[room]; dup {
			continue
		}
		first[room] = i
		if fresh[room] {
			applyIdx = append(applyIdx, i)
		} else {
			oldDup = append(oldDup, i)
		}
	}

	// The current ratings of everyone the new results rate, locked.
	cur := map[ratingKey]*standing{}
	var keys []ratingKey
	for _, i := range applyIdx {
		for _, p := range batch[i].r.Players {
			k := ratingKey{p.UUID, batch[i].r.Profile}
			if cur[k] == nil {
				cur[k] = &standing{rating: DefaultRating}
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, func(a, b ratingKey) int {
		if c := strings.Compare(a.id, b.id); c != 0 {
			return c
		}
		return strings.Compare(a.profile, b.profile)
	})
	if len(keys) > 0 {
		args := make([]any, 0, 2*len(keys))
		for _, k := range keys {
			args = append(args, k.id, k.profile)
		}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT player_id, profile, rating FROM ratings WHERE (player_id, profile) IN (VALUES `+
			placeholders(len(keys), 2)+`)`+db.dialect.lockRows), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k ratingKey
			var rating int
			if err := rows.Scan(&k.id, &k.profile, &rating); err != nil {
				rows.Close()
				return err
			}
			if st := cur[k]; st != nil {
				st.rating, st.existed = rating, true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}

	// Elo, result by result in batch order, in memory.
	counts := map[string]map[int]int64{} // profile -> rating -> delta
	var histArgs []any
	histRows := 0
	for _, i := range applyIdx {
		r := batch[i].r
		c := counts[r.Profile]
		if c == nil {
			c = map[int]int64{}
			counts[r.Profile] = c
		}
		out := Applied{Ratings: make(map[string]RatingChange, len(r.Players))}
		before := make([]int, len(r.Players))
		ranks := make([]int, len(r.Players))
		best, atBest := MaxPlayers+1, 0
		for j, p := range r.Players {
			before[j], ranks[j] = cur[ratingKey{p.UUID, r.Profile}].rating, p.Rank
			switch {
			case p.Rank < best:
				best, atBest = p.Rank, 1
			case p.Rank == best:
				atBest++
			}
		}
		deltas := EloDeltas(before, ranks, EloK)
		for j, p := range r.Players {
			st := cur[ratingKey{p.UUID, r.Profile}]
			after := max(0, before[j]+deltas[j])
			out.Ratings[p.UUID] = RatingChange{Before: before[j], After: after}
			if st.existed {
				c[before[j]]--
			}
			c[after]++
			st.rating, st.existed, st.changed = after, true, true
			st.games++
			if len(r.Players) > 1 {
				if p.Rank == best && atBest == 1 {
					st.wins++
				} else if p.Rank > best {
					st.losses++
				}
			}
			histArgs = append(histArgs, r.Room, p.UUID, p.Name, p.Rank, p.Score, p.Left, before[j], after, ms(r.Ended))
			histRows++
		}
		outs[i] = out
	}

	if len(keys) > 0 {
		args := make([]any, 0, len(keys)*7)
		for _, k := range keys {
			st := cur[k]
			args = append(args, k.id, k.profile, st.rating, st.games, st.wins, st.losses, now)
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO ratings (player_id, profile, rating, games, wins, losses, updated_ms) VALUES `+
			placeholders(len(keys), 7)+` ON CONFLICT (player_id, profile) DO UPDATE SET rating = excluded.rating,
				games = ratings.games + excluded.games, wins = ratings.wins + excluded.wins, losses = ratings.losses + excluded.losses,
				updated_ms = excluded.updated_ms`), args...); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO match_players (room, player_id, name, place, score, left_early,
			rating_before, rating_after, ended_ms) VALUES `+placeholders(histRows, 9)), histArgs...); err != nil {
			return err
		}
	}
	profiles := make([]string, 0, len(counts))
	for p := range counts {
		profiles = append(profiles, p)
	}
	slices.Sort(profiles)
	for _, p := range profiles {
		if err := db.addCounts(ctx, tx, p, counts[p]); err != nil {
			return err
		}
	}

	// Duplicates: of a room recorded before, the changes recorded then; of
	// a room applied earlier in this batch, the changes just made.
	for _, i := range oldDup {
		out := Applied{Ratings: map[string]RatingChange{}, Duplicate: true}
		if err := db.recordedChanges(ctx, tx, batch[i].r.Room, out.Ratings); err != nil {
			return err
		}
		outs[i] = out
	}
	for i, req := range batch {
		if f := first[req.r.Room]; f != i {
			outs[i] = Applied{Ratings: outs[f].Ratings, Duplicate: true}
		}
	}
	return nil
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
