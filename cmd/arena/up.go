package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
)

// upCommand runs everything on one machine: an embedded memcached (unless
// --memcache is given), generated secrets (unless given), the dispatcher
// with its fight, map and chat servers, and the web pages on --http.
func upCommand() *cli.Command {
	flags := append(dispatcherFlags(true),
		intFlag("bots", 0, "bot players kept queueing and playing, so one person alone can be matched"),
		stringFlag("credentials", ".arena/credentials.json", "file (mode 0600) where generated tokens are written; secrets are never logged"),
	)
	return &cli.Command{
		Name:  "up",
		Usage: "run the whole system on one machine with defaults (open http://localhost:8080)",
		Flags: flags,
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			cfg := dispatcherConfig(c)
			if len(cfg.Memcache) == 0 {
				mc, err := store.StartEmbedded(0)
				if err != nil {
					return err
				}
				defer mc.Close()
				cfg.Memcache = []string{mc.Addr()}
				log.Info("embedded memcached started", "addr", mc.Addr())
			}
			generated := map[string]string{}
			for _, s := range []struct {
				name string
				v    *string
			}{{"secret", &cfg.Secret}, {"fleet_token", &cfg.FleetToken}, {"operator_token", &cfg.OperatorToken}, {"backend_token", &cfg.BackendToken}} {
				if *s.v == "" {
					*s.v = auth.RandomID(24)
					generated[s.name] = *s.v
				}
			}
			if len(generated) > 0 {
				path := c.String("credentials")
				if err := writeCredentials(path, generated); err != nil {
					return err
				}
				log.Info("generated tokens written (not logged)", "file", path)
			}
			cfg.Bots = c.Int("bots")
			return runDispatcher(c.Context, cfg, log)
		},
	}
}

// writeCredentials writes generated tokens as JSON to path with mode 0600.
func writeCredentials(path string, creds map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	b, _ := json.MarshalIndent(creds, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	return os.Chmod(path, 0o600)
}
