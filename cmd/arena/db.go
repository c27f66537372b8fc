package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/playerdb"
)

func dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "player database tools (docs/database.md)",
		Subcommands: []*cli.Command{{
			Name:  "copy",
			Usage: "copy every record of one player database into another, empty one (SQLite to PostgreSQL, or back); stop arena first",
			Flags: []cli.Flag{
				stringFlag("from", "", "source database DSN: sqlite:PATH or postgres://...; a password here shows in the process list: prefer --from-file"),
				stringFlag("to", "", "target database DSN (migrated to this binary's schema, and must hold no records)"),
				fileFlag("from-file", "file holding the --from DSN"),
				fileFlag("to-file", "file holding the --to DSN"),
			},
			Action: func(c *cli.Context) error {
				cfg, err := dbCopyConfig(c)
				if err != nil {
					return err
				}
				return runDBCopy(c.Context, cfg, c.App.Writer)
			},
		}},
	}
}

// dbCopy is arena db copy's configuration.
type dbCopy struct{ From, To string }

func dbCopyConfig(c *cli.Context) (dbCopy, error) {
	var cfg dbCopy
	for _, f := range []struct {
		name string
		dst  *string
	}{{"from", &cfg.From}, {"to", &cfg.To}} {
		v, err := flagOrFile(c, f.name, f.name+"-file")
		if err != nil {
			return cfg, err
		}
		if v == "" {
			return cfg, fmt.Errorf("arena db copy: --%s (or --%s-file) is required", f.name, f.name)
		}
		if *f.dst, err = absDSN(v); err != nil {
			return cfg, err
		}
	}
	if !playerdb.IsPostgres(cfg.From) {
		// Opening a missing SQLite file would create it empty: a typo
		// would copy nothing and say so quietly.
		if _, err := os.Stat(strings.TrimPrefix(cfg.From, "sqlite:")); err != nil {
			return cfg, fmt.Errorf("arena db copy: --from: %w", err)
		}
	}
	if cfg.From == cfg.To {
		return cfg, fmt.Errorf("arena db copy: --from and --to name the same database")
	}
	return cfg, nil
}

// runDBCopy opens both databases (migrating them to this binary's
// schema) and copies src into dst, printing progress to out. DSNs are
// printed redacted.
func runDBCopy(ctx context.Context, cfg dbCopy, out io.Writer) error {
	src, err := playerdb.Open(ctx, playerdb.Config{DSN: cfg.From, MaxConns: 2})
	if err != nil {
		return fmt.Errorf("arena db copy: --from: %w", err)
	}
	defer src.Close()
	dst, err := playerdb.Open(ctx, playerdb.Config{DSN: cfg.To, MaxConns: 2})
	if err != nil {
		return fmt.Errorf("arena db copy: --to: %w", err)
	}
	defer dst.Close()
	fmt.Fprintf(out, "copying %s (%s) into %s (%s)\n", playerdb.Redact(cfg.From), src.Kind(), playerdb.Redact(cfg.To), dst.Kind())
	start := time.Now()
	last := map[string]time.Time{}
	stats, err := playerdb.Copy(ctx, dst, src, func(table string, rows int) {
		if time.Since(last[table]) > time.Second {
			last[table] = time.Now()
			fmt.Fprintf(out, "  %s: %d rows\n", table, rows)
		}
	})
	if err != nil {
		return fmt.Errorf("arena db copy: %w (the target is unchanged)", err)
	}
	for _, t := range []string{"players", "ratings", "rating_shards", "matches", "match_players"} {
		fmt.Fprintf(out, "%-14s %d rows\n", t, stats[t])
	}
	fmt.Fprintf(out, "done in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}
