package playerdb

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"
)

// pruneBatch is how many guest records one PruneGuests statement deletes
// at most: a round of a large backlog holds SQLite's write lock for one
// short statement at a time.
const pruneBatch = 1000

// PruneGuests deletes up to limit guest records that nothing refers to
// and that nobody has used since seenBefore: no account, not a bot, no
// rating and no match. A guest's tokens are issued when its record is
// seen, so once seenBefore is the token lifetime ago, no token reaches
// the record (and a token that still did would find no record and start
// afresh, as a guest that never played does: nothing is lost). It
// returns how many it deleted.
func (db *DB) PruneGuests(ctx context.Context, seenBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := db.write(ctx, "prune guests", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`DELETE FROM players WHERE id IN (
			SELECT p.id FROM players p
			WHERE p.account IS NULL AND p.last_seen_ms < ? AND NOT p.bot
				AND NOT EXISTS (SELECT 1 FROM ratings r WHERE r.player_id = p.id)
				AND NOT EXISTS (SELECT 1 FROM match_players m WHERE m.player_id = p.id)
			LIMIT ?)`), seenBefore.UnixMilli(), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// PruneConfig configures RunGuestPruner.
type PruneConfig struct {
	// Retention: guests unseen this long are pruned (see PruneGuests);
	// zero or less turns pruning off.
	Retention time.Duration
	// Every is how often a round runs; zero means an hour.
	Every  time.Duration
	Logger *slog.Logger
}

// RunGuestPruner prunes guest records (PruneGuests) once soon after it
// starts and then every cfg.Every until ctx ends, each round in batches
// until none is left. A round that fails is logged and tried again at the
// next. Several processes may run it on one database.
func (db *DB) RunGuestPruner(ctx context.Context, cfg PruneConfig) {
	if cfg.Retention <= 0 {
		return
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Hour
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wait := time.Minute // not at start, beside migrations and a cold cache
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = cfg.Every
		total, err := db.pruneRound(ctx, time.Now().Add(-cfg.Retention))
		switch {
		case err != nil && !errors.Is(err, context.Canceled):
			log.Warn("prune guest records", "deleted", total, "err", err)
		case total > 0:
			log.Info("guest records pruned", "deleted", total, "unseen_for", cfg.Retention.String())
		}
	}
}

// pruneRound prunes in batches until a batch comes back short.
func (db *DB) pruneRound(ctx context.Context, seenBefore time.Time) (int, error) {
	total := 0
	for {
		n, err := db.PruneGuests(ctx, seenBefore, pruneBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < pruneBatch {
			return total, nil
		}
	}
}
