package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/bots"
	"github.com/arena-game/arena/dispatcher"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/memcached"
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
			cfg, err := dispatcherConfig(c)
			if err != nil {
				return err
			}
			if len(cfg.Memcache) == 0 {
				mc, err := store.StartEmbeddedConfig(memcached.Config{Logger: log.With("component", "memcached")})
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
			return runUp(c.Context, cfg, log)
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

// runUp is runDispatcher plus the bot players: once the dispatcher is
// ready, a bots.Fleet keeps cfg.Bots bots playing against its HTTP address
// and is attached to the dispatcher so the dashboard (POST /v1/bots) can
// change their number, also from 0.
func runUp(ctx context.Context, cfg dispatcher.Config, log *slog.Logger) error {
	d, err := openDispatcher(ctx, cfg, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	botsDone := make(chan struct{})
	go func() {
		defer close(botsDone)
		select {
		case <-d.Ready():
		case <-ctx.Done():
			return
		}
		_, httpAddr := d.Addrs()
		bf, err := bots.New(bots.Config{
			BaseURL: "http://" + loopbackAddr(httpAddr), OperatorToken: cfg.OperatorToken,
			Count: cfg.Bots, Logger: log,
		})
		if err != nil {
			log.Error("bots not started", "err", err)
			return
		}
		d.SetBots(bf)
		_ = bf.Run(ctx)
	}()
	err = d.run(ctx)
	cancel()
	<-botsDone
	return err
}

// loopbackAddr turns a bound listen address into one this process can dial:
// an unspecified host (":8080", "0.0.0.0:8080", "[::]:8080") becomes
// 127.0.0.1.
func loopbackAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
