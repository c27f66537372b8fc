package playerdb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// ExecForTest runs a statement on the database, for tests that set up
// states the API never makes (a schema from the future).
func (db *DB) ExecForTest(ctx context.Context, stmt string) error {
	_, err := db.sql.ExecContext(ctx, stmt)
	return err
}

// LockWritesForTest holds the database's write lock (SQLite: an exclusive
// transaction; PostgreSQL: an exclusive lock on matches) until release is
// called: a stalled database, as far as Apply can tell.
func (db *DB) LockWritesForTest(ctx context.Context) (release func(), err error) {
	tx, err := db.sql.BeginTx(ctx, nil) // SQLite: BEGIN IMMEDIATE (the DSN's txlock)
	if err != nil {
		return nil, err
	}
	if db.dialect.name == "postgres" {
		_, err = tx.ExecContext(ctx, "LOCK TABLE matches IN ACCESS EXCLUSIVE MODE")
	} else {
		_, err = tx.ExecContext(ctx, "UPDATE arena_schema SET applied_ms = applied_ms WHERE version = 0")
	}
	if err != nil {
		tx.Rollback()
		return nil, err
	}
	return func() { tx.Rollback() }, nil
}

// SeedForBench inserts n players rated in profile (ratings spread
// around 1500, as a real population's are) with the histogram to match,
// in large multi-row statements, for the leaderboard benchmark.
func (db *DB) SeedForBench(ctx context.Context, profile string, n int) error {
	const batch = 500
	counts := map[int]int64{}
	now := db.now().UnixMilli()
	for start := 0; start < n; start += batch {
		m := min(batch, n-start)
		pargs := make([]any, 0, m*6)
		rargs := make([]any, 0, m*7)
		for i := start; i < start+m; i++ {
			id := "bench" + strconv.Itoa(i)
			// A deterministic bell-ish spread: the sum of three uniform
			// draws, 900..2100.
			h := uint32(i) * 2654435761
			r := 900 + int(h%401) + int((h>>9)%401) + int((h>>18)%401)
			counts[r]++
			pargs = append(pargs, id, "Player "+strconv.Itoa(i), "", false, now, now)
			rargs = append(rargs, id, profile, r, 10, 5, 5, now)
		}
		err := db.write(ctx, "seed", func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, db.q("INSERT INTO players (id, display_name, photo, bot, created_ms, last_seen_ms) VALUES "+placeholders(m, 6)), pargs...); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, db.q("INSERT INTO ratings (player_id, profile, rating, games, wins, losses, updated_ms) VALUES "+placeholders(m, 7)), rargs...)
			return err
		})
		if err != nil {
			return err
		}
	}
	err := db.write(ctx, "seed counts", func(tx *sql.Tx) error { return db.addCounts(ctx, tx, profile, counts) })
	if err != nil {
		return err
	}
	_, err = db.sql.ExecContext(ctx, "ANALYZE")
	return err
}

// RawInsert is the raw database's insert rate baseline: one
// single-row INSERT per transaction (the durability a result gets) into
// a plain table, from the calling goroutine.
func (db *DB) RawInsert(ctx context.Context, k int64) error {
	return db.write(ctx, "raw insert", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q("INSERT INTO bench_raw (k, v) VALUES (?, ?)"), k, "x")
		return err
	})
}

// CreateRawTable makes the baseline's table.
func (db *DB) CreateRawTable(ctx context.Context) error {
	_, err := db.sql.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS bench_raw (k BIGINT PRIMARY KEY, v TEXT NOT NULL)")
	return err
}

// TableForTest is every row of one of the tables Copy carries, in key
// order, each formatted as one string.
func (db *DB) TableForTest(ctx context.Context, table string) ([]string, error) {
	for _, t := range copyTables {
		if t.name != table {
			continue
		}
		rows, err := db.sql.QueryContext(ctx, "SELECT "+strings.Join(t.cols, ", ")+" FROM "+t.name+" ORDER BY "+strings.Join(t.cols[:t.key], ", "))
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			row := scanTargets(t.kinds)
			if err := rows.Scan(row...); err != nil {
				return nil, err
			}
			out = append(out, fmt.Sprint(values(row)...))
		}
		return out, rows.Err()
	}
	return nil, fmt.Errorf("no table %s", table)
}

// CopyTablesForTest names the tables Copy carries.
func CopyTablesForTest() []string {
	var out []string
	for _, t := range copyTables {
		out = append(out, t.name)
	}
	return out
}
