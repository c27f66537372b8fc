package playerdb

import "context"

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
