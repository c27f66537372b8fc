package playerdb

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// migrationFS holds the schema migrations, NNNN_name.sql, applied in
// order. Each is portable SQL that both PostgreSQL and SQLite accept.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order.
func migrations() ([]migration, error) {
	files, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		num, name, ok := strings.Cut(strings.TrimSuffix(base, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", base)
		}
		b, err := migrationFS.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migrations: version %d where %d was expected", m.version, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this binary migrates databases to.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrationLockKey is the PostgreSQL advisory lock that serialises
// processes migrating one database at once (a dispatcher and its fight
// processes starting together).
const migrationLockKey = 0x6172656e61 // "arena"

// migrate brings the schema to SchemaVersion in one transaction, under a
// lock so concurrent starts apply each step once. A database whose schema
// is newer than the binary is ErrSchemaNewer and is left untouched.
func (db *DB) migrate(ctx context.Context) error {
	steps, err := migrations()
	if err != nil {
		return err
	}
	return db.write(ctx, "migrate schema", func(tx *sql.Tx) error {
		if db.dialect.name == "postgres" {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS arena_schema (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_ms BIGINT  NOT NULL)`); err != nil {
			return err
		}
		var have sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MAX(version) FROM arena_schema").Scan(&have); err != nil {
			return err
		}
		if int(have.Int64) > len(steps) {
			return fmt.Errorf("%w: the database is at schema version %d and this arena knows versions up to %d; run a newer arena against it (or restore a backup)",
				ErrSchemaNewer, have.Int64, len(steps))
		}
		for _, m := range steps[have.Int64:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.ExecContext(ctx, db.q("INSERT INTO arena_schema (version, name, applied_ms) VALUES (?, ?, ?)"),
				m.version, m.name, db.now().UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Version returns the schema version the database is at.
func (db *DB) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	if err := db.sql.QueryRowContext(ctx, "SELECT MAX(version) FROM arena_schema").Scan(&v); err != nil {
		return 0, unavailable("schema version", err)
	}
	return int(v.Int64), nil
}
