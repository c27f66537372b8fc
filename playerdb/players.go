package playerdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/arena-game/arena/internal/ids"
)

// NewPlayer is what EnsurePlayer creates a record from.
type NewPlayer struct {
	ID    string
	Name  string
	Photo string
	Bot   bool
}

func (p *NewPlayer) validate() error {
	if !validID(p.ID) {
		return fmt.Errorf("%w: player id must be "+ids.Rule, ErrInvalid)
	}
	name, ok := CleanName(p.Name)
	if !ok {
		return fmt.Errorf("%w: display name must be 1-%d printable characters", ErrInvalid, MaxNameRunes)
	}
	p.Name = name
	if len(p.Photo) > MaxPhotoLen {
		return fmt.Errorf("%w: photo longer than %d bytes", ErrInvalid, MaxPhotoLen)
	}
	return nil
}

// EnsurePlayer creates p's record if there is none, or else updates its
// display name, photo and bot flag (a backend vouching for the player, or
// a login), and marks it seen now. It returns the record.
func (db *DB) EnsurePlayer(ctx context.Context, p NewPlayer) (Player, error) {
	if err := p.validate(); err != nil {
		return Player{}, fmt.Errorf("ensure player: %w", err)
	}
	err := db.write(ctx, "ensure player", func(tx *sql.Tx) error {
		now := db.now().UnixMilli()
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO players (id, display_name, photo, bot, created_ms, last_seen_ms)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name, photo = excluded.photo,
				bot = excluded.bot, last_seen_ms = excluded.last_seen_ms`),
			p.ID, p.Name, p.Photo, p.Bot, now, now)
		return err
	})
	if err != nil {
		return Player{}, err
	}
	return db.Player(ctx, p.ID)
}

// Seen marks the player seen now. A player with no record is ErrNotFound.
func (db *DB) Seen(ctx context.Context, id string) error {
	return db.write(ctx, "mark player seen", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q("UPDATE players SET last_seen_ms = ? WHERE id = ?"), db.now().UnixMilli(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// Player reads a player's record with its ratings; ErrNotFound if there is
// none.
func (db *DB) Player(ctx context.Context, id string) (Player, error) {
	if !validID(id) {
		return Player{}, fmt.Errorf("get player: %w", ErrNotFound)
	}
	var p Player
	var account sql.NullString
	var created, seen int64
	err := db.sql.QueryRowContext(ctx, db.q(`SELECT id, display_name, photo, bot, account, created_ms, last_seen_ms
		FROM players WHERE id = ?`), id).Scan(&p.ID, &p.Name, &p.Photo, &p.Bot, &account, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return Player{}, fmt.Errorf("get player %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Player{}, unavailable("get player", err)
	}
	p.Account, p.Created, p.LastSeen = account.String, fromMS(created), fromMS(seen)
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT profile, rating, games, wins, losses, updated_ms
		FROM ratings WHERE player_id = ?`), id)
	if err != nil {
		return Player{}, unavailable("get player ratings", err)
	}
	defer rows.Close()
	p.Ratings = map[string]Rating{}
	for rows.Next() {
		var r Rating
		var upd int64
		if err := rows.Scan(&r.Profile, &r.Rating, &r.Games, &r.Wins, &r.Losses, &upd); err != nil {
			return Player{}, unavailable("get player ratings", err)
		}
		r.Updated = fromMS(upd)
		p.Ratings[r.Profile] = r
	}
	if err := rows.Err(); err != nil {
		return Player{}, unavailable("get player ratings", err)
	}
	return p, nil
}

// SetRating sets p's rating in profile to rating (a rating a trusted
// backend vouches for), creating the player's record if needed. Games,
// wins and losses are kept.
func (db *DB) SetRating(ctx context.Context, p NewPlayer, profile string, rating int) error {
	if err := p.validate(); err != nil {
		return fmt.Errorf("set rating: %w", err)
	}
	if !ValidProfile(profile) || rating < 0 || rating > 100000 {
		return fmt.Errorf("set rating: %w: profile or rating out of range", ErrInvalid)
	}
	profile = NormProfile(profile)
	return db.write(ctx, "set rating", func(tx *sql.Tx) error {
		now := db.now().UnixMilli()
		if err := db.upsertPlayers(ctx, tx, []NewPlayer{p}, now); err != nil {
			return err
		}
		old, err := db.readRatings(ctx, tx, profile, []string{p.ID})
		if err != nil {
			return err
		}
		counts := map[int]int64{rating: 1}
		if r, ok := old[p.ID]; ok {
			counts[r]--
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO ratings (player_id, profile, rating, updated_ms) VALUES (?, ?, ?, ?)
			ON CONFLICT (player_id, profile) DO UPDATE SET rating = excluded.rating, updated_ms = excluded.updated_ms`),
			p.ID, profile, rating, now); err != nil {
			return err
		}
		return db.addCounts(ctx, tx, profile, counts)
	})
}

// upsertPlayers creates the players that have no record and marks all of
// them seen, in id order. On PostgreSQL this takes the players' row locks,
// which serialise every transaction that changes one player's ratings; the
// order keeps two such transactions from deadlocking.
func (db *DB) upsertPlayers(ctx context.Context, tx *sql.Tx, ps []NewPlayer, now int64) error {
	args := make([]any, 0, len(ps)*6)
	for _, p := range ps {
		args = append(args, p.ID, p.Name, p.Photo, p.Bot, now, now)
	}
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO players (id, display_name, photo, bot, created_ms, last_seen_ms) VALUES `+
		placeholders(len(ps), 6)+` ON CONFLICT (id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms`), args...)
	return err
}

// readRatings returns the current ratings in profile of those of ids that
// have one.
func (db *DB) readRatings(ctx context.Context, tx *sql.Tx, profile string, ids []string) (map[string]int, error) {
	// (player_id, profile) pairs, so both databases look the rows up by
	// the primary key (a profile = ? condition led SQLite to scan the
	// profile's whole leaderboard index).
	args := make([]any, 0, 2*len(ids))
	for _, id := range ids {
		args = append(args, id, profile)
	}
	rows, err := tx.QueryContext(ctx, db.q(`SELECT player_id, rating FROM ratings WHERE (player_id, profile) IN (VALUES `+
		placeholders(len(ids), 2)+`)`+db.dialect.lockRows), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int, len(ids))
	for rows.Next() {
		var id string
		var r int
		if err := rows.Scan(&id, &r); err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, rows.Err()
}

// histogramShards is how many rows one (profile, rating) of the
// histogram is split into (migration 0002).
const histogramShards = 8

// addCounts adds deltas to the profile's rating histogram, in one shard
// picked at random.
func (db *DB) addCounts(ctx context.Context, tx *sql.Tx, profile string, deltas map[int]int64) error {
	m := make(map[histKey]int64, len(deltas))
	for r, d := range deltas {
		m[histKey{profile, r}] = d
	}
	return db.addCountRows(ctx, tx, countRows(m), rand.IntN(histogramShards))
}

// addCountRows adds rows (sorted by profile and rating, so concurrent
// transactions lock the histogram's rows in one order) to the histogram's
// shard.
func (db *DB) addCountRows(ctx context.Context, tx *sql.Tx, rows []countRow, shard int) error {
	if len(rows) == 0 {
		return nil
	}
	args := make([]any, 0, len(rows)*4)
	for _, r := range rows {
		args = append(args, r.profile, r.rating, shard, r.n)
	}
	_, err := tx.ExecContext(ctx, db.q(`INSERT INTO rating_shards (profile, rating, shard, n) VALUES `+placeholders(len(rows), 4)+
		` ON CONFLICT (profile, rating, shard) DO UPDATE SET n = rating_shards.n + excluded.n`), args...)
	return err
}

// MinAccountLen and MaxAccountLen bound account (login) names.
const (
	MinAccountLen = 3
	MaxAccountLen = 32
)

// NormAccount lower-cases an account name and checks it: 3 to 32 of
// [a-z0-9_.-] (upper case letters are accepted and folded).
func NormAccount(s string) (string, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < MinAccountLen || len(s) > MaxAccountLen {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "", false
		}
	}
	return s, true
}

// ClaimAccount gives player id the account name and password hash, so the
// same record can be reached by logging in from another browser. A player
// with no record is ErrNotFound, one that already has an account
// ErrHasAccount, a name another player has ErrAccountTaken.
func (db *DB) ClaimAccount(ctx context.Context, id, account, hash string) error {
	name, ok := NormAccount(account)
	if !ok || hash == "" || len(hash) > 512 {
		return fmt.Errorf("claim account: %w: account must be %d-%d of [a-z0-9_.-]", ErrInvalid, MinAccountLen, MaxAccountLen)
	}
	return db.write(ctx, "claim account", func(tx *sql.Tx) error {
		var have sql.NullString
		err := tx.QueryRowContext(ctx, db.q("SELECT account FROM players WHERE id = ?"+db.dialect.lockRows), id).Scan(&have)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if have.Valid {
			return ErrHasAccount
		}
		// A concurrent claim of the same name can still win between this
		// check and the update: the unique index turns that into
		// ErrAccountTaken below.
		var other string
		err = tx.QueryRowContext(ctx, db.q("SELECT id FROM players WHERE account = ?"), name).Scan(&other)
		if err == nil {
			return ErrAccountTaken
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q("UPDATE players SET account = ?, password_hash = ?, last_seen_ms = ? WHERE id = ?"),
			name, hash, db.now().UnixMilli(), id)
		if isUniqueViolation(err) {
			return ErrAccountTaken
		}
		return err
	})
}

// AccountCredentials returns the player id and password hash of account;
// ErrNotFound if no player has it.
func (db *DB) AccountCredentials(ctx context.Context, account string) (id, hash string, err error) {
	name, ok := NormAccount(account)
	if !ok {
		return "", "", fmt.Errorf("account credentials: %w", ErrNotFound)
	}
	err = db.sql.QueryRowContext(ctx, db.q("SELECT id, password_hash FROM players WHERE account = ?"), name).Scan(&id, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", fmt.Errorf("account credentials: %w", ErrNotFound)
	}
	if err != nil {
		return "", "", unavailable("account credentials", err)
	}
	return id, hash, nil
}

// PlayerCredentials returns the account name and password hash of player
// id: ErrNotFound if it has no record, ErrNoAccount if it is a guest.
func (db *DB) PlayerCredentials(ctx context.Context, id string) (account, hash string, err error) {
	if !validID(id) {
		return "", "", fmt.Errorf("player credentials: %w", ErrNotFound)
	}
	var acc, h sql.NullString
	err = db.sql.QueryRowContext(ctx, db.q("SELECT account, password_hash FROM players WHERE id = ?"), id).Scan(&acc, &h)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", "", fmt.Errorf("player credentials %s: %w", id, ErrNotFound)
	case err != nil:
		return "", "", unavailable("player credentials", err)
	case !acc.Valid:
		return "", "", fmt.Errorf("player credentials %s: %w", id, ErrNoAccount)
	}
	return acc.String, h.String, nil
}

// TokensValidFrom returns the second (unix) from which player id's tokens
// are accepted: a player token whose iat is before it was revoked (0: none
// was). It always reads the database, never a cache, so a revocation is
// seen by the next request. A player with no record is ErrNotFound.
func (db *DB) TokensValidFrom(ctx context.Context, id string) (int64, error) {
	if !validID(id) {
		return 0, fmt.Errorf("tokens valid from: %w", ErrNotFound)
	}
	var from int64
	err := db.sql.QueryRowContext(ctx, db.q("SELECT tokens_valid_from_s FROM players WHERE id = ?"), id).Scan(&from)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("tokens valid from %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, unavailable("tokens valid from", err)
	}
	return from, nil
}

// RevokeTokens revokes every token of player id issued up to now: it sets
// the player's tokens_valid_from_s to the second after now's, or one past
// its previous value when that is later (two revocations within one
// second), and returns it. Every token minted before the call has an iat
// at most now's second, or at most the previous value, so all are
// refused; the caller mints its fresh token with an iat of the returned
// second (auth.Signer.MintFrom), up to a second or two ahead of the
// clock. The player is marked seen. A player with no record is
// ErrNotFound.
func (db *DB) RevokeTokens(ctx context.Context, id string, now time.Time) (int64, error) {
	return db.revoke(ctx, "revoke tokens", id, "", now)
}

// ChangePassword stores hash as player id's password hash and revokes
// every token of the player issued up to now (as RevokeTokens does), in
// one transaction, and returns the second from which tokens are accepted.
// A player with no record is ErrNotFound, a guest ErrNoAccount.
func (db *DB) ChangePassword(ctx context.Context, id, hash string, now time.Time) (int64, error) {
	if hash == "" || len(hash) > 512 {
		return 0, fmt.Errorf("change password: %w: password hash empty or too long", ErrInvalid)
	}
	return db.revoke(ctx, "change password", id, hash, now)
}

// revoke is RevokeTokens, also setting the password hash when hash is
// not empty (then a guest is ErrNoAccount).
func (db *DB) revoke(ctx context.Context, op, id, hash string, now time.Time) (int64, error) {
	if !validID(id) {
		return 0, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	var from int64
	err := db.write(ctx, op, func(tx *sql.Tx) error {
		var account sql.NullString
		var prev int64
		err := tx.QueryRowContext(ctx, db.q("SELECT account, tokens_valid_from_s FROM players WHERE id = ?"+db.dialect.lockRows), id).Scan(&account, &prev)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if hash != "" && !account.Valid {
			return ErrNoAccount
		}
		from = max(now.Unix()+1, prev+1)
		// Seen now: a guest is pruned only when unseen for longer than a
		// token lives, so its record, and with it the revocation, outlives
		// every token the revocation refuses.
		seen := db.now().UnixMilli()
		if hash != "" {
			_, err = tx.ExecContext(ctx, db.q("UPDATE players SET password_hash = ?, tokens_valid_from_s = ?, last_seen_ms = ? WHERE id = ?"), hash, from, seen, id)
		} else {
			_, err = tx.ExecContext(ctx, db.q("UPDATE players SET tokens_valid_from_s = ?, last_seen_ms = ? WHERE id = ?"), from, seen, id)
		}
		return err
	})
	return from, err
}
