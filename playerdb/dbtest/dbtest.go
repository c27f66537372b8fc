// Package dbtest gives tests player databases: a fresh SQLite file always,
// and a fresh schema in the PostgreSQL named by ARENA_TEST_POSTGRES (a
// postgres:// DSN; scripts/test.sh starts one on a free port) when set.
// Without it the PostgreSQL backend is skipped with a message, except
// under CI=true, where a missing PostgreSQL fails the test.
package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver

	"github.com/arena-game/arena/playerdb"
)

// Backend names a database kind a test runs against.
type Backend string

// The backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists the backends every store test runs against.
var Backends = []Backend{SQLite, Postgres}

var seq atomic.Int64

// DSN returns a DSN of an empty database of kind b for t, dropped when t
// ends; for Postgres without ARENA_TEST_POSTGRES it skips t (fails it
// under CI=true).
func DSN(t testing.TB, b Backend) string {
	t.Helper()
	if b == SQLite {
		return "sqlite:" + filepath.Join(t.TempDir(), "arena.db")
	}
	base := os.Getenv("ARENA_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("dbtest: ARENA_TEST_POSTGRES is not set; CI must run the PostgreSQL tests (scripts/test.sh starts one)")
		}
		t.Skip("dbtest: ARENA_TEST_POSTGRES not set (scripts/test.sh starts a PostgreSQL when it is installed): PostgreSQL backend skipped")
	}
	schema := fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e9, seq.Add(1))
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		t.Fatalf("dbtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = admin.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("dbtest: ARENA_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open returns a migrated, empty database of kind b for t, closed when t
// ends.
func Open(t testing.TB, b Backend) *playerdb.DB {
	t.Helper()
	db, err := playerdb.Open(context.Background(), playerdb.Config{DSN: DSN(t, b)})
	if err != nil {
		t.Fatalf("dbtest: open %s: %v", b, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Each runs f once per backend, as a subtest named after it.
func Each(t *testing.T, f func(t *testing.T, b Backend)) {
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) { f(t, b) })
	}
}
