package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	"github.com/arena-game/arena/playerdb"
)

// upCommand runs everything on one machine: an embedded memcached (unless
// --memcache is given), generated secrets (unless given), the dispatcher
// with its fight, map and chat servers, and the web pages on --http.
func upCommand() *cli.Command {
	flags := append(dispatcherFlags(true),
		intFlag("bots", 0, "bot players kept queueing and playing, so one person alone can be matched"),
		stringFlag("credentials", ".arena/credentials.json", "file (mode 0600) of the generated secret and tokens: reused on the next start, written only once arena listens; secrets are never logged"),
		intFlag("embedded-memcache-mb", 64, "memory of the embedded memcached started without --memcache, in MiB; beyond it the least recently used items are evicted (and a warning logged)"),
		boolFlag("rotate-credentials", "generate a new secret and new tokens instead of the --credentials file's (every player token and the old operator token stop working)"),
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
				mc, err := store.StartEmbeddedConfig(memcached.Config{
					Logger:    log.With("component", "memcached"),
					MaxMemory: int64(c.Int("embedded-memcache-mb")) << 20,
				})
				if err != nil {
					return err
				}
				defer mc.Close()
				cfg.Memcache = []string{mc.Addr()}
				log.Info("embedded memcached started", "addr", mc.Addr(), "max_memory_mb", c.Int("embedded-memcache-mb"))
			}
			creds, err := upCredentials(&cfg, c.String("credentials"), c.Bool("rotate-credentials"))
			if err != nil {
				return err
			}
			cfg.Bots = c.Int("bots")
			return runUp(c.Context, cfg, pruneConfig(c, log), log, creds.save(log))
		},
	}
}

// credentialNames are the secrets `arena up` generates when not given,
// with the Config field of each.
var credentialNames = []struct {
	key   string
	field func(*dispatcher.Config) *string
}{
	{"secret", func(c *dispatcher.Config) *string { return &c.Secret }},
	{"fleet_token", func(c *dispatcher.Config) *string { return &c.FleetToken }},
	{"operator_token", func(c *dispatcher.Config) *string { return &c.OperatorToken }},
	{"backend_token", func(c *dispatcher.Config) *string { return &c.BackendToken }},
}

// credentials is the --credentials file of `arena up`.
type credentials struct {
	path    string
	values  map[string]string
	changed bool // values differ from the file: write once arena listens
}

// upCredentials fills the secrets cfg lacks (none given by flag, file or
// environment) from the credentials file at path, so players stay signed
// in and the operator token keeps working across restarts; what the file
// lacks, or everything with rotate, is generated. The file is not written
// here: see credentials.save. An unreadable or malformed file is an error
// (never silently replaced).
func upCredentials(cfg *dispatcher.Config, path string, rotate bool) (*credentials, error) {
	cr := &credentials{path: path, values: map[string]string{}}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("--credentials: %w", err)
	default:
		if err := json.Unmarshal(b, &cr.values); err != nil {
			return nil, fmt.Errorf("--credentials %s: not a JSON object of strings (fix or remove it, or use --rotate-credentials): %w", path, err)
		}
	}
	if rotate {
		cr.values, cr.changed = map[string]string{}, true
	}
	for _, n := range credentialNames {
		v := n.field(cfg)
		if *v != "" {
			continue // given: not stored
		}
		if old := cr.values[n.key]; old != "" {
			*v = old
			continue
		}
		*v = auth.RandomID(24)
		cr.values[n.key], cr.changed = *v, true
	}
	return cr, nil
}

// save returns the hook runUp calls once arena listens: it writes the
// file when its values changed. A second `arena up` that cannot bind its
// ports never gets there, so it never replaces a running arena's tokens.
func (cr *credentials) save(log *slog.Logger) func() error {
	return func() error {
		if !cr.changed {
			return nil
		}
		if err := writeCredentials(cr.path, cr.values); err != nil {
			return err
		}
		log.Info("generated tokens written (not logged)", "file", cr.path)
		return nil
	}
}

// writeCredentials writes creds as JSON to path with mode 0600, through a
// temporary file renamed into place.
func writeCredentials(path string, creds map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	b, _ := json.MarshalIndent(creds, "", "  ")
	f, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return fmt.Errorf("write credentials: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path) // CreateTemp made it 0600
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write credentials: %w", err)
	}
	return nil
}

// runUp is runDispatcher plus the bot players: once the dispatcher is
// ready (listening), onReady runs (it saves the credentials; an error
// stops arena), then a bots.Fleet keeps cfg.Bots bots playing against its
// HTTP address and is attached to the dispatcher so the dashboard (POST
// /v1/bots) can change their number, also from 0.
func runUp(ctx context.Context, cfg dispatcher.Config, prune playerdb.PruneConfig, log *slog.Logger, onReady func() error) error {
	d, err := openDispatcher(ctx, cfg, prune, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	botsDone := make(chan struct{})
	var readyErr error
	go func() {
		defer close(botsDone)
		select {
		case <-d.Ready():
		case <-ctx.Done():
			return
		}
		if readyErr = onReady(); readyErr != nil {
			cancel()
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
	if readyErr != nil {
		return readyErr
	}
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
