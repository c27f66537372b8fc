package playerdb

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
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
		err := db.writeApply(ctx, "apply results", func(s applyStore) error { return db.applyTx(ctx, s, batch, outs) })
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
		req.err = db.writeApply(ctx, "apply result "+req.r.Room, func(s applyStore) error {
			return db.applyTx(ctx, s, []*applyReq{req}, outs)
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

// applyStore is what applying a batch asks of the database, inside one
// write transaction, in two phases: PostgreSQL sends each phase's
// statements in one round trip (pgStore), SQLite runs them one after the
// other (sqlStore).
type applyStore interface {
	// read creates the players without a record and marks every one
	// seen (players sorted by id), inserts the matches (one per room),
	// reporting the rooms new to the database, and reads the ratings of
	// keys (sorted) that exist, under their row locks.
	read(ctx context.Context, players []NewPlayer, matches []Result, keys []ratingKey, now int64) (fresh map[string]bool, ratings map[ratingKey]int, err error)
	// write writes w, and returns the rating changes recorded for each of
	// w.dups (rooms recorded before this transaction).
	write(ctx context.Context, w batchWrites) (recorded map[string]map[string]RatingChange, err error)
}

// batchWrites is what one batch writes once its ratings are computed.
type batchWrites struct {
	now     int64
	ratings []ratingRow  // by (player, profile): the new rating, games, wins and losses to add
	history []historyRow // every player's line of every applied match
	counts  []countRow   // histogram deltas by (profile, rating), non-zero
	shard   int          // the histogram shard the deltas go to
	dups    []string     // rooms recorded before: read their changes back
}

type ratingRow struct {
	key                         ratingKey
	rating, games, wins, losses int
}

type historyRow struct {
	room, player, name string
	place              int
	score              float64
	left               bool
	before, after      int
	ended              int64
}

type countRow struct {
	profile string
	rating  int
	n       int64
}

// applyTx applies the results of batch through s, in order, filling outs,
// with a handful of statements for the whole batch: players, matches
// (reporting the rooms new to the database), the ratings read under lock,
// the ratings written, the history lines, the histogram. A room recorded
// before, or earlier in the batch, is a duplicate answered with the
// changes recorded for it. Lock order (PostgreSQL): every player of the
// batch by id, then ratings by (player, profile), then the histogram rows
// by (profile, rating), so concurrent batches never deadlock.
func (db *DB) applyTx(ctx context.Context, s applyStore, batch []*applyReq, outs []Applied) error {
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

	// The first of the batch's results of a room is the one that may
	// apply; the rest of that room's are duplicates. The ratings of all
	// the first results' players are read (and locked): those of a room
	// recorded before are then left as they are.
	first := map[string]int{}
	var uniq []int
	var matches []Result
	cur := map[ratingKey]*standing{}
	var keys []ratingKey
	for i, req := range batch {
		if _, dup := first[req.r.Room]; dup {
			continue
		}
		first[req.r.Room] = i
		uniq = append(uniq, i)
		matches = append(matches, req.r)
		for _, p := range req.r.Players {
			k := ratingKey{p.UUID, req.r.Profile}
			if cur[k] == nil {
				cur[k] = &standing{rating: DefaultRating}
				keys = append(keys, k)
			}
		}
	}
	slices.SortFunc(keys, compareKeys)
	fresh, ratings, err := s.read(ctx, everyone, matches, keys, now)
	if err != nil {
		return err
	}
	for k, r := range ratings {
		if st := cur[k]; st != nil {
			st.rating, st.existed = r, true
		}
	}
	var applyIdx, oldDup []int
	for _, i := range uniq {
		if fresh[batch[i].r.Room] {
			applyIdx = append(applyIdx, i)
		} else {
			oldDup = append(oldDup, i)
		}
	}

	// Elo, result by result in batch order, in memory.
	w := batchWrites{now: now, shard: rand.IntN(histogramShards)}
	counts := map[histKey]int64{} // (profile, rating) -> delta
	for _, i := range applyIdx {
		r := batch[i].r
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
				counts[histKey{r.Profile, before[j]}]--
			}
			counts[histKey{r.Profile, after}]++
			st.rating, st.existed, st.changed = after, true, true
			st.games++
			if len(r.Players) > 1 {
				if p.Rank == best && atBest == 1 {
					st.wins++
				} else if p.Rank > best {
					st.losses++
				}
			}
			w.history = append(w.history, historyRow{room: r.Room, player: p.UUID, name: p.Name, place: p.Rank, score: p.Score,
				left: p.Left, before: before[j], after: after, ended: ms(r.Ended)})
		}
		outs[i] = out
	}
	for _, k := range keys {
		if st := cur[k]; st.changed {
			w.ratings = append(w.ratings, ratingRow{key: k, rating: st.rating, games: st.games, wins: st.wins, losses: st.losses})
		}
	}
	w.counts = countRows(counts)
	for _, i := range oldDup {
		w.dups = append(w.dups, batch[i].r.Room)
	}
	recorded, err := s.write(ctx, w)
	if err != nil {
		return err
	}

	// Duplicates: of a room recorded before, the changes recorded then; of
	// a room applied earlier in this batch, the changes just made.
	for _, i := range oldDup {
		rc := recorded[batch[i].r.Room]
		if rc == nil {
			rc = map[string]RatingChange{}
		}
		outs[i] = Applied{Ratings: rc, Duplicate: true}
	}
	for i, req := range batch {
		if f := first[req.r.Room]; f != i {
			outs[i] = Applied{Ratings: outs[f].Ratings, Duplicate: true}
		}
	}
	return nil
}

// histKey names one row of a profile's rating histogram.
type histKey struct {
	profile string
	rating  int
}

// countRows returns the non-zero deltas sorted by profile and rating, the
// histogram's lock order.
func countRows(deltas map[histKey]int64) []countRow {
	var out []countRow
	for k, n := range deltas {
		if n != 0 {
			out = append(out, countRow{k.profile, k.rating, n})
		}
	}
	slices.SortFunc(out, func(a, b countRow) int {
		if c := strings.Compare(a.profile, b.profile); c != 0 {
			return c
		}
		return a.rating - b.rating
	})
	return out
}

func compareKeys(a, b ratingKey) int {
	if c := strings.Compare(a.id, b.id); c != 0 {
		return c
	}
	return strings.Compare(a.profile, b.profile)
}

// sqlStore is applyStore over a database/sql transaction (SQLite), one
// statement at a time.
type sqlStore struct {
	db *DB
	tx *sql.Tx
}

func (s sqlStore) read(ctx context.Context, players []NewPlayer, matches []Result, keys []ratingKey, now int64) (map[string]bool, map[ratingKey]int, error) {
	db, tx := s.db, s.tx
	if err := db.upsertPlayers(ctx, tx, players, now); err != nil {
		return nil, nil, err
	}
	margs := make([]any, 0, len(matches)*8)
	for _, r := range matches {
		margs = append(margs, r.Room, r.Game, r.Profile, r.Host, r.Reason, ms(r.Started), ms(r.Ended), now)
	}
	rows, err := tx.QueryContext(ctx, db.q(`INSERT INTO matches (room, game, profile, host, reason, started_ms, ended_ms, recorded_ms)
		VALUES `+placeholders(len(matches), 8)+` ON CONFLICT (room) DO NOTHING RETURNING room`), margs...)
	if err != nil {
		return nil, nil, err
	}
	fresh := map[string]bool{}
	for rows.Next() {
		var room string
		if err := rows.Scan(&room); err != nil {
			rows.Close()
			return nil, nil, err
		}
		fresh[room] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	ratings := map[ratingKey]int{}
	if len(keys) == 0 {
		return fresh, ratings, nil
	}
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k.id, k.profile)
	}
	rows, err = tx.QueryContext(ctx, db.q(`SELECT player_id, profile, rating FROM ratings WHERE (player_id, profile) IN (VALUES `+
		placeholders(len(keys), 2)+`)`+db.dialect.lockRows), args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k ratingKey
		var rating int
		if err := rows.Scan(&k.id, &k.profile, &rating); err != nil {
			return nil, nil, err
		}
		ratings[k] = rating
	}
	return fresh, ratings, rows.Err()
}

func (s sqlStore) write(ctx context.Context, w batchWrites) (map[string]map[string]RatingChange, error) {
	db, tx := s.db, s.tx
	if len(w.ratings) > 0 {
		args := make([]any, 0, len(w.ratings)*7)
		for _, r := range w.ratings {
			args = append(args, r.key.id, r.key.profile, r.rating, r.games, r.wins, r.losses, w.now)
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO ratings (player_id, profile, rating, games, wins, losses, updated_ms) VALUES `+
			placeholders(len(w.ratings), 7)+` ON CONFLICT (player_id, profile) DO UPDATE SET rating = excluded.rating,
				games = ratings.games + excluded.games, wins = ratings.wins + excluded.wins, losses = ratings.losses + excluded.losses,
				updated_ms = excluded.updated_ms`), args...); err != nil {
			return nil, err
		}
	}
	if len(w.history) > 0 {
		args := make([]any, 0, len(w.history)*9)
		for _, h := range w.history {
			args = append(args, h.room, h.player, h.name, h.place, h.score, h.left, h.before, h.after, h.ended)
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO match_players (room, player_id, name, place, score, left_early,
			rating_before, rating_after, ended_ms) VALUES `+placeholders(len(w.history), 9)), args...); err != nil {
			return nil, err
		}
	}
	if err := db.addCountRows(ctx, tx, w.counts, w.shard); err != nil {
		return nil, err
	}
	recorded := map[string]map[string]RatingChange{}
	for _, room := range w.dups {
		rc := map[string]RatingChange{}
		if err := db.recordedChanges(ctx, tx, room, rc); err != nil {
			return nil, err
		}
		recorded[room] = rc
	}
	return recorded, nil
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
