package playerdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ErrNotEmpty: Copy's target database already holds records.
var ErrNotEmpty = errors.New("the target database is not empty")

// copyTable is a table Copy carries: its columns (each with its kind: s
// text, n nullable text, b boolean, i integer, f float) and how many of
// the first ones are its primary key.
type copyTable struct {
	name  string
	cols  []string
	kinds string
	key   int
}

// copyTables are the schema's tables in an order that keeps every
// reference valid (players before what refers to them). arena_schema is
// not copied: Open migrated both databases to one version.
var copyTables = []copyTable{
	{"players", []string{"id", "display_name", "photo", "bot", "account", "password_hash", "created_ms", "last_seen_ms", "tokens_valid_from_s"}, "sssbnniii", 1},
	{"ratings", []string{"player_id", "profile", "rating", "games", "wins", "losses", "updated_ms"}, "ssiiiii", 2},
	{"rating_shards", []string{"profile", "rating", "shard", "n"}, "siii", 3},
	{"matches", []string{"room", "game", "profile", "host", "reason", "started_ms", "ended_ms", "recorded_ms"}, "sssssiii", 1},
	{"match_players", []string{"room", "player_id", "name", "place", "score", "left_early", "rating_before", "rating_after", "ended_ms"}, "sssifbiii", 2},
}

// copyPage is how many rows Copy reads and inserts at a time.
const copyPage = 500

// CopyStats counts the rows Copy carried, by table.
type CopyStats map[string]int

// Copy copies every record of src into dst, which must be empty (no
// players, ratings or matches; else ErrNotEmpty): a move from SQLite to
// PostgreSQL, or back. It reads src in one snapshot (records written to
// src meanwhile are not carried: stop the dispatchers and fight servers
// first) and writes dst in one transaction, so dst gets everything or
// nothing; then it checks that dst holds as many rows as src had. Both
// are at this binary's schema version (Open migrated them).
func Copy(ctx context.Context, dst, src *DB, progress func(table string, rows int)) (CopyStats, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if src.dialect.name == "postgres" {
		opts.Isolation = sql.LevelRepeatableRead // one snapshot for every table
	}
	rtx, err := src.sql.BeginTx(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("copy players: read source: %w", err)
	}
	defer rtx.Rollback()
	stats := CopyStats{}
	err = dst.write(ctx, "copy players", func(wtx *sql.Tx) error {
		clear(stats)
		for _, t := range copyTables {
			var n int
			if err := wtx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.name).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return fmt.Errorf("%w: %s holds %d rows", ErrNotEmpty, t.name, n)
			}
		}
		for _, t := range copyTables {
			n, err := copyRows(ctx, dst, wtx, src, rtx, t, progress)
			if err != nil {
				return fmt.Errorf("table %s: %w", t.name, err)
			}
			stats[t.name] = n
		}
		for _, t := range copyTables {
			var n int
			if err := wtx.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.name).Scan(&n); err != nil {
				return err
			}
			if n != stats[t.name] {
				return fmt.Errorf("table %s: %d rows copied, %d in the target", t.name, stats[t.name], n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return stats, nil
}

// copyRows copies table t page by page, in key order, and returns how
// many rows it copied.
func copyRows(ctx context.Context, dst *DB, wtx *sql.Tx, src *DB, rtx *sql.Tx, t copyTable, progress func(string, int)) (int, error) {
	cols := strings.Join(t.cols, ", ")
	keys := strings.Join(t.cols[:t.key], ", ")
	first := fmt.Sprintf("SELECT %s FROM %s ORDER BY %s LIMIT %d", cols, t.name, keys, copyPage)
	next := src.q(fmt.Sprintf("SELECT %s FROM %s WHERE (%s) > (%s) ORDER BY %s LIMIT %d",
		cols, t.name, keys, strings.TrimSuffix(strings.TrimPrefix(placeholders(1, t.key), "("), ")"), keys, copyPage))
	total := 0
	var after []any
	for {
		var rows *sql.Rows
		var err error
		if after == nil {
			rows, err = rtx.QueryContext(ctx, first)
		} else {
			rows, err = rtx.QueryContext(ctx, next, after...)
		}
		if err != nil {
			return total, err
		}
		var args []any
		n := 0
		for rows.Next() {
			row := scanTargets(t.kinds)
			if err := rows.Scan(row...); err != nil {
				rows.Close()
				return total, err
			}
			args = append(args, values(row)...)
			n++
		}
		if err := rows.Close(); err != nil {
			return total, err
		}
		if err := rows.Err(); err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		if _, err := wtx.ExecContext(ctx, dst.q(fmt.Sprintf("INSERT INTO %s (%s) VALUES %s", t.name, cols, placeholders(n, len(t.cols)))), args...); err != nil {
			return total, err
		}
		total += n
		if progress != nil {
			progress(t.name, total)
		}
		if n < copyPage {
			return total, nil
		}
		last := args[len(args)-len(t.cols):]
		after = append([]any(nil), last[:t.key]...)
	}
}

// scanTargets are pointers to scan one row of the kinds into.
func scanTargets(kinds string) []any {
	out := make([]any, len(kinds))
	for i, k := range kinds {
		switch k {
		case 's':
			out[i] = new(string)
		case 'n':
			out[i] = new(sql.NullString)
		case 'b':
			out[i] = new(bool)
		case 'i':
			out[i] = new(int64)
		case 'f':
			out[i] = new(float64)
		}
	}
	return out
}

// values are the scanned row's values, as arguments.
func values(row []any) []any {
	out := make([]any, len(row))
	for i, p := range row {
		switch v := p.(type) {
		case *string:
			out[i] = *v
		case *sql.NullString:
			out[i] = *v
		case *bool:
			out[i] = *v
		case *int64:
			out[i] = *v
		case *float64:
			out[i] = *v
		}
	}
	return out
}
