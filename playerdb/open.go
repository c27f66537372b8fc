package playerdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Config configures Open.
type Config struct {
	// DSN names the database: postgres://... or postgresql://... for
	// PostgreSQL; sqlite:PATH or a plain file path for SQLite (the file
	// and its directory are created if missing). The DSN may hold a
	// password: it is never logged or put in an error.
	DSN string
	// MaxConns bounds the connections this process opens; zero means 8.
	MaxConns int
	// Timeout bounds connecting and migrating at Open; zero means 10s.
	Timeout time.Duration
}

// DB is a player database, PostgreSQL or SQLite. It is safe for
// concurrent use.
type DB struct {
	sql     *sql.DB
	dialect dialect
	// writeMu serialises this process's write transactions on SQLite,
	// where only one writer at a time can hold the database anyway;
	// waiting on a mutex is cheaper than SQLite's busy polling. Other
	// processes' writers wait on the file lock (busy_timeout).
	writeMu sync.Mutex
	now     func() time.Time

	// applyQ feeds the committers that apply results in batches (see
	// Apply); closed ends them.
	applyQ     chan *applyReq
	closed     chan struct{}
	closeOnce  sync.Once
	committers sync.WaitGroup
}

// dialect is what differs between the two databases.
type dialect struct {
	name string // "postgres" or "sqlite"
	// dollar rewrites ? placeholders as $1, $2, ... (PostgreSQL).
	dollar bool
	// lockRows is appended to SELECTs that read rows the transaction will
	// update ("FOR UPDATE" on PostgreSQL; SQLite's write transactions
	// already exclude other writers).
	lockRows string
}

// Kind returns "postgres" or "sqlite".
func (db *DB) Kind() string { return db.dialect.name }

// IsPostgres reports whether dsn names a PostgreSQL database.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Redact returns dsn without its password, for logs and messages.
func Redact(dsn string) string {
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable DSN)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Open connects to the database cfg.DSN names, applies the schema
// migrations this binary embeds that it lacks, and returns it. A database
// that cannot be reached within cfg.Timeout is an error wrapping
// ErrUnavailable; one migrated by a newer binary is ErrSchemaNewer.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.DSN == "" {
		return nil, fmt.Errorf("open player database: %w: no DSN", ErrInvalid)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	db := &DB{now: time.Now, applyQ: make(chan *applyReq, 1024), closed: make(chan struct{})}
	name := Redact(cfg.DSN)
	if IsPostgres(cfg.DSN) {
		db.dialect = dialect{name: "postgres", dollar: true, lockRows: " FOR UPDATE"}
		s, err := sql.Open("pgx", pgDSN(cfg.DSN))
		if err != nil {
			return nil, fmt.Errorf("open player database %s: %w: %v", name, ErrInvalid, redactErr(err, cfg.DSN))
		}
		s.SetMaxOpenConns(cfg.MaxConns)
		s.SetMaxIdleConns(cfg.MaxConns)
		s.SetConnMaxIdleTime(5 * time.Minute)
		db.sql = s
	} else {
		db.dialect = dialect{name: "sqlite"}
		path := strings.TrimPrefix(cfg.DSN, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") {
			return nil, fmt.Errorf("open player database %s: %w: want sqlite:PATH or a file path", name, ErrInvalid)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("open player database %s: %w", name, err)
		}
		// The file holds password hashes: only its owner reads it (SQLite
		// gives its -wal and -shm files the same mode).
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open player database %s: %w", name, err)
		}
		f.Close()
		// WAL lets readers run beside the one writer; synchronous FULL
		// makes every commit durable (fsync) before Apply returns;
		// immediate transactions take the write lock at BEGIN, so two
		// writers never deadlock upgrading a read lock.
		q := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
		s, err := sql.Open("sqlite", "file:"+path+"?"+q)
		if err != nil {
			return nil, fmt.Errorf("open player database %s: %w", name, err)
		}
		s.SetMaxOpenConns(cfg.MaxConns)
		s.SetMaxIdleConns(cfg.MaxConns)
		db.sql = s
	}
	if err := db.connect(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("open player database %s: %w: %v", name, ErrUnavailable, redactErr(err, cfg.DSN))
	}
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, fmt.Errorf("open player database %s: %w", name, err)
	}
	// SQLite has one writer at a time: one committer. PostgreSQL runs two
	// batches at once, so one's round trips overlap the other's commit
	// (more committers made smaller batches and more commits, no faster:
	// docs/BENCHMARKS.md).
	n := 1
	if db.dialect.name == "postgres" {
		n = min(2, cfg.MaxConns)
	}
	for range n {
		db.committers.Add(1)
		go db.committer()
	}
	return db, nil
}

// connect opens the first connection. Several processes opening one new
// SQLite file at once race to switch it to WAL, and the loser gets
// SQLITE_BUSY from the journal_mode pragma without SQLite's busy handler
// being consulted; connect retries that (and any other transient conflict)
// with a short backoff until ctx ends.
func (db *DB) connect(ctx context.Context) error {
	wait := 5 * time.Millisecond
	for {
		err := db.sql.PingContext(ctx)
		if err == nil || !retryable(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// pgDSN sets pgx's query mode to "exec" unless the DSN chooses one: one
// round trip per statement with the parameter types taken from the Go
// values, and no server-side statement cache to fill (the batch
// statements' shapes vary with the number of players and results).
func pgDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	q := u.Query()
	if q.Has("default_query_exec_mode") {
		return dsn
	}
	q.Set("default_query_exec_mode", "exec")
	u.RawQuery = q.Encode()
	return u.String()
}

// redactErr returns err's text with the DSN's password blanked, should a
// driver quote it.
func redactErr(err error, dsn string) string {
	msg := err.Error()
	if u, perr := url.Parse(dsn); perr == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}

// Close stops applying results (Applies still waiting fail with
// ErrUnavailable; a batch being written finishes) and closes the
// connections.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { close(db.closed) })
	db.committers.Wait()
	return db.sql.Close()
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping player database: %w: %v", ErrUnavailable, err)
	}
	return nil
}

// q rewrites a query written with ? placeholders for the dialect.
func (db *DB) q(query string) string {
	if !db.dialect.dollar {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// placeholders returns "(?, ?, ...)" groups: rows groups of cols marks.
func placeholders(rows, cols int) string {
	var b strings.Builder
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := 0; c < cols; c++ {
			if c > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	return b.String()
}

// retryable reports whether err is a transient conflict worth retrying the
// whole transaction for: a PostgreSQL serialization failure or deadlock, or
// SQLite busy or locked.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// isUniqueViolation reports whether err is a unique constraint failure.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// write runs fn in a write transaction, retrying transient conflicts a few
// times. Errors other than fn's own sentinel errors wrap ErrUnavailable.
func (db *DB) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	return db.retry(ctx, op, func() error { return db.tryWrite(ctx, fn) })
}

// writeApply runs fn in a write transaction as write does, over the
// dialect's applyStore: pgStore (pgx, pipelined) on PostgreSQL, sqlStore
// on SQLite.
func (db *DB) writeApply(ctx context.Context, op string, fn func(s applyStore) error) error {
	if db.dialect.name != "postgres" {
		return db.write(ctx, op, func(tx *sql.Tx) error { return fn(sqlStore{db, tx}) })
	}
	return db.retry(ctx, op, func() error { return db.tryPG(ctx, fn) })
}

// retry runs try, again after a short backoff while it fails with a
// transient conflict (at most 8 times in all); on SQLite it holds writeMu
// throughout.
func (db *DB) retry(ctx context.Context, op string, try func() error) error {
	if db.dialect.name == "sqlite" {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, ctx.Err())
			case <-time.After(time.Duration(attempt*attempt) * 5 * time.Millisecond):
			}
		}
		err = try()
		if err == nil || !retryable(err) {
			break
		}
	}
	if err == nil {
		return nil
	}
	if isOwnError(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
}

func (db *DB) tryWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// isOwnError reports whether err is one of the package's sentinel errors
// (other than ErrUnavailable), which pass through unwrapped in kind.
func isOwnError(err error) bool {
	for _, e := range []error{ErrNotFound, ErrInvalid, ErrAccountTaken, ErrHasAccount, ErrNoAccount, ErrSchemaNewer, ErrNotEmpty} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// unavailable wraps a read error as ErrUnavailable (sentinels pass).
func unavailable(op string, err error) error {
	if isOwnError(err) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %v", op, ErrUnavailable, err)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}
