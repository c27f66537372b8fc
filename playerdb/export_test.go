package playerdb

import "context"

// ExecForTest runs a statement on the database, for tests that set up
// states the API never makes (a schema from the future).
func (db *DB) ExecForTest(ctx context.Context, stmt string) error {
	_, err := db.sql.ExecContext(ctx, stmt)
	return err
}
