package playerdb

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// The statements of a batch on PostgreSQL. Each takes whole columns as
// arrays (unnest), so its text is the same whatever the batch holds: it
// is prepared once per connection and planned once, where a multi-row
// VALUES list of a new length was parsed and planned on every batch.
var pgApply = []struct{ name, sql string }{
	{"arena_apply_players", `INSERT INTO players (id, display_name, photo, bot, created_ms, last_seen_ms)
		SELECT id, name, photo, bot, $5::bigint, $5::bigint FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[]) AS u(id, name, photo, bot)
		ON CONFLICT (id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms`},
	{"arena_apply_matches", `INSERT INTO matches (room, game, profile, host, reason, started_ms, ended_ms, recorded_ms)
		SELECT room, game, profile, host, reason, started, ended, $8::bigint
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[]) AS u(room, game, profile, host, reason, started, ended)
		ON CONFLICT (room) DO NOTHING RETURNING room`},
	// A lookup by primary key per key, in the keys' order (the lock
	// order): a join let a plan cached while the table was small scan
	// the whole table for every batch.
	{"arena_apply_read", `SELECT r.player_id, r.profile, r.rating FROM unnest($1::text[], $2::text[]) AS k(id, profile)
		CROSS JOIN LATERAL (SELECT * FROM ratings WHERE player_id = k.id AND profile = k.profile FOR UPDATE) AS r`},
	{"arena_apply_ratings", `INSERT INTO ratings (player_id, profile, rating, games, wins, losses, updated_ms)
		SELECT id, profile, rating, games, wins, losses, $7::bigint
		FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::int[]) AS u(id, profile, rating, games, wins, losses)
		ON CONFLICT (player_id, profile) DO UPDATE SET rating = excluded.rating,
			games = ratings.games + excluded.games, wins = ratings.wins + excluded.wins, losses = ratings.losses + excluded.losses,
			updated_ms = excluded.updated_ms`},
	{"arena_apply_history", `INSERT INTO match_players (room, player_id, name, place, score, left_early, rating_before, rating_after, ended_ms)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::float8[], $6::bool[], $7::int[], $8::int[], $9::bigint[])`},
	{"arena_apply_counts", `INSERT INTO rating_shards (profile, rating, shard, n)
		SELECT profile, rating, $3::int, n FROM unnest($1::text[], $2::int[], $4::bigint[]) AS u(profile, rating, n)
		ON CONFLICT (profile, rating, shard) DO UPDATE SET n = rating_shards.n + excluded.n`},
	{"arena_apply_recorded", `SELECT m.room, m.player_id, m.rating_before, m.rating_after FROM unnest($1::text[]) AS k(room)
		CROSS JOIN LATERAL (SELECT * FROM match_players WHERE room = k.room) AS m`},
}

// tryPG runs fn once in a transaction on a pgx connection of the pool,
// with the apply statements prepared on it.
func (db *DB) tryPG(ctx context.Context, fn func(s applyStore) error) error {
	c, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres connection is a %T", dc)
		}
		pc := sc.Conn()
		for _, st := range pgApply {
			if _, err := pc.Prepare(ctx, st.name, st.sql); err != nil { // a map lookup once prepared
				return err
			}
		}
		return pgx.BeginFunc(ctx, pc, func(tx pgx.Tx) error { return fn(pgStore{tx}) })
	})
}

// pgStore is applyStore over a pgx transaction: each phase is one batch,
// sent in one round trip.
type pgStore struct{ tx pgx.Tx }

func (s pgStore) read(ctx context.Context, players []NewPlayer, matches []Result, keys []ratingKey, now int64) (map[string]bool, map[ratingKey]int, error) {
	var b pgx.Batch
	pid, pname, pphoto, pbot := make([]string, len(players)), make([]string, len(players)), make([]string, len(players)), make([]bool, len(players))
	for i, p := range players {
		pid[i], pname[i], pphoto[i], pbot[i] = p.ID, p.Name, p.Photo, p.Bot
	}
	b.Queue("arena_apply_players", pid, pname, pphoto, pbot, now)
	n := len(matches)
	room, game, profile, host, reason := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	started, ended := make([]int64, n), make([]int64, n)
	for i, r := range matches {
		room[i], game[i], profile[i], host[i], reason[i], started[i], ended[i] = r.Room, r.Game, r.Profile, r.Host, r.Reason, ms(r.Started), ms(r.Ended)
	}
	fresh := map[string]bool{}
	b.Queue("arena_apply_matches", room, game, profile, host, reason, started, ended, now).Query(func(rows pgx.Rows) error {
		var r string
		_, err := pgx.ForEachRow(rows, []any{&r}, func() error { fresh[r] = true; return nil })
		return err
	})
	ratings := map[ratingKey]int{}
	if len(keys) > 0 {
		kid, kprof := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			kid[i], kprof[i] = k.id, k.profile
		}
		b.Queue("arena_apply_read", kid, kprof).Query(func(rows pgx.Rows) error {
			var k ratingKey
			var r int
			_, err := pgx.ForEachRow(rows, []any{&k.id, &k.profile, &r}, func() error { ratings[k] = r; return nil })
			return err
		})
	}
	if err := s.tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, nil, err
	}
	return fresh, ratings, nil
}

func (s pgStore) write(ctx context.Context, w batchWrites) (map[string]map[string]RatingChange, error) {
	var b pgx.Batch
	if n := len(w.ratings); n > 0 {
		id, prof := make([]string, n), make([]string, n)
		rating, games, wins, losses := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		for i, r := range w.ratings {
			id[i], prof[i], rating[i], games[i], wins[i], losses[i] = r.key.id, r.key.profile, int32(r.rating), int32(r.games), int32(r.wins), int32(r.losses)
		}
		b.Queue("arena_apply_ratings", id, prof, rating, games, wins, losses, w.now)
	}
	if n := len(w.history); n > 0 {
		room, player, name := make([]string, n), make([]string, n), make([]string, n)
		place, before, after := make([]int32, n), make([]int32, n), make([]int32, n)
		score, left, ended := make([]float64, n), make([]bool, n), make([]int64, n)
		for i, h := range w.history {
			room[i], player[i], name[i], place[i], score[i], left[i], before[i], after[i], ended[i] =
				h.room, h.player, h.name, int32(h.place), h.score, h.left, int32(h.before), int32(h.after), h.ended
		}
		b.Queue("arena_apply_history", room, player, name, place, score, left, before, after, ended)
	}
	if n := len(w.counts); n > 0 {
		prof, rating, delta := make([]string, n), make([]int32, n), make([]int64, n)
		for i, c := range w.counts {
			prof[i], rating[i], delta[i] = c.profile, int32(c.rating), c.n
		}
		b.Queue("arena_apply_counts", prof, rating, int32(w.shard), delta)
	}
	recorded := map[string]map[string]RatingChange{}
	if len(w.dups) > 0 {
		b.Queue("arena_apply_recorded", w.dups).Query(func(rows pgx.Rows) error {
			var room, id string
			var c RatingChange
			_, err := pgx.ForEachRow(rows, []any{&room, &id, &c.Before, &c.After}, func() error {
				if recorded[room] == nil {
					recorded[room] = map[string]RatingChange{}
				}
				recorded[room][id] = c
				return nil
			})
			return err
		})
	}
	if err := s.tx.SendBatch(ctx, &b).Close(); err != nil {
		return nil, err
	}
	return recorded, nil
}
