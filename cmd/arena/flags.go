package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/playerdb"
)

// env returns the environment variable names for a flag: ARENA_ plus the
// flag name upper-cased with '-' as '_'.
func env(name string) []string {
	return []string{"ARENA_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))}
}

func stringFlag(name, value, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: env(name)}
}

// secretFlag is a string flag whose value is never shown in help output.
func secretFlag(name, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: usage, EnvVars: env(name), DefaultText: "none"}
}

func intFlag(name string, value int, usage string) *cli.IntFlag {
	return &cli.IntFlag{Name: name, Value: value, Usage: usage, EnvVars: env(name)}
}

func boolFlag(name string, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Usage: usage, EnvVars: env(name)}
}

func logLevelFlag() *cli.StringFlag {
	return stringFlag("log-level", "info", "log level: debug, info, warn, error")
}

func memcacheFlag() *cli.StringFlag {
	return stringFlag("memcache", "", "memcached servers host:port[,host:port...], the same servers (written the same way, any order) on every process; keys are placed by consistent hashing (docs/memcached.md)")
}

func allowedOriginsFlag() *cli.StringFlag {
	return stringFlag("allowed-origins", "", "browser origins (scheme://host[:port], comma-separated; * = any) allowed to open arena's WebSockets besides pages of the servers' own host and localhost; see docs/SECURITY.md")
}

// origins splits --allowed-origins.
func origins(c *cli.Context) []string {
	var out []string
	for _, o := range strings.Split(c.String("allowed-origins"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	return out
}

func storePrefixFlag() *cli.StringFlag {
	return stringFlag("store-prefix", "arena:", "key prefix in memcached, so arenas can share one memcached")
}

// newLogger builds the process's slog logger from --log-level.
func newLogger(c *cli.Context) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
	procLog.Store(log)
	return log, nil
}

// procLog is the logger the running command built with newLogger, for the
// lines main writes itself (a stop signal), so that every line of a process
// has one format.
var procLog atomic.Pointer[slog.Logger]

// processLogger returns the command's logger, or a text logger on stderr
// when the command has not built one.
func processLogger() *slog.Logger {
	if l := procLog.Load(); l != nil {
		return l
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// defaultUpDB is `arena up`'s player database: an SQLite file.
const defaultUpDB = "sqlite:.arena/arena.db"

// dbFlag is --db: the player database DSN (required by `arena
// dispatcher`, an SQLite file by default in `arena up`).
func dbFlag(up bool) *cli.StringFlag {
	def := ""
	if up {
		def = defaultUpDB
	}
	return &cli.StringFlag{Name: "db", Value: def, EnvVars: env("db"), DefaultText: def,
		Usage: "player database: postgres://USER:PASSWORD@HOST:PORT/DB (PostgreSQL) or sqlite:PATH (an SQLite file); a password here shows in the process list: prefer ARENA_DB or --db-file"}
}

// fileFlag is a flag naming a file that holds a secret value.
func fileFlag(name, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Usage: usage, EnvVars: env(name)}
}

// flagOrFile returns the value of flag, or the contents of the file named
// by fileFlag (trimmed of surrounding whitespace) when that is set; both
// set is an error.
func flagOrFile(c *cli.Context, flag, fileFlag string) (string, error) {
	path := c.String(fileFlag)
	if path == "" {
		return c.String(flag), nil
	}
	if c.IsSet(flag) {
		return "", fmt.Errorf("--%s and --%s are both set; give one", flag, fileFlag)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", fileFlag, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" {
		return "", fmt.Errorf("--%s: %s is empty", fileFlag, path)
	}
	return v, nil
}

// absDSN makes an SQLite DSN's path absolute, so fleet processes started
// elsewhere open the same file; other DSNs are returned as they are.
func absDSN(dsn string) (string, error) {
	if dsn == "" || playerdb.IsPostgres(dsn) {
		return dsn, nil
	}
	abs, err := filepath.Abs(strings.TrimPrefix(dsn, "sqlite:"))
	if err != nil {
		return "", fmt.Errorf("--db: %w", err)
	}
	return "sqlite:" + abs, nil
}
