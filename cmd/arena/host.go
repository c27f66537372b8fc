package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/host"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proc"
)

// hostKindFlags are the flags of a host's kinds of process, shared by
// `arena host` and the dispatcher's local host (`arena up`,
// `arena dispatcher --local-host`, whose --game flags are the
// dispatcher's own).
func hostKindFlags(chatPort int, games bool) []cli.Flag {
	flags := []cli.Flag{
		intFlag("fight-port-base", 7000, "first port of fight servers on this host (range of --port-span)"),
		intFlag("map-port-base", 7500, "first port of map servers on this host"),
		intFlag("port-span", 100, "ports in each kind's range"),
		intFlag("chat-port", chatPort, "port of the chat server this host keeps running (0: none)"),
		intFlag("max-processes", 16, "most processes of each kind this host runs"),
	}
	if games {
		flags = append(flags,
			intFlag("game-port-base", 7700, "first port of game servers (--game) on this host"),
			&cli.StringSliceFlag{Name: "game", Usage: "NAME=PATH: a game server binary (docs/your-game.md); the dispatcher places the rooms of profiles playing NAME on it; repeatable", EnvVars: env("game")})
	}
	return flags
}

// hostKinds maps the kind flags to the host's kinds.
func hostKinds(c *cli.Context) (map[string]host.Kind, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable: %w", err)
	}
	span, max := c.Int("port-span"), c.Int("max-processes")
	if span < 1 || max < 0 {
		return nil, errors.New("--port-span must be at least 1 and --max-processes not negative")
	}
	kinds := map[string]host.Kind{
		proc.KindFight: {Command: host.Command{Path: exe, Args: []string{proc.KindFight}}, FirstPort: c.Int("fight-port-base"), LastPort: c.Int("fight-port-base") + span - 1, Max: max},
		proc.KindMap:   {Command: host.Command{Path: exe, Args: []string{proc.KindMap}}, FirstPort: c.Int("map-port-base"), LastPort: c.Int("map-port-base") + span - 1, Max: max},
	}
	if p := c.Int("chat-port"); p > 0 {
		kinds[proc.KindChat] = host.Kind{Command: host.Command{Path: exe, Args: []string{proc.KindChat}}, FirstPort: p, LastPort: p, Max: 1, Fixed: true}
	}
	return kinds, nil
}

// addGameKinds adds the --game binaries of `arena host` to kinds.
func addGameKinds(c *cli.Context, kinds map[string]host.Kind) error {
	span, max := c.Int("port-span"), c.Int("max-processes")
	games := map[string]string{}
	if err := options(games, c.StringSlice("game")); err != nil {
		return fmt.Errorf("--game: %w", err)
	}
	base := c.Int("game-port-base")
	for name, path := range games {
		if _, taken := kinds[name]; taken {
			return fmt.Errorf("--game %s: the name of a built-in kind", name)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("--game %s: %w", name, err)
		}
		if base+span-1 > 65535 {
			return fmt.Errorf("--game %s: ports from %d out of range", name, base)
		}
		kinds[name] = host.Kind{Command: host.Command{Path: abs}, FirstPort: base, LastPort: base + span - 1, Max: max}
		base += span
	}
	return nil
}

// localHostConfig is the dispatcher's own host: its kinds on --host.
func localHostConfig(c *cli.Context) (*host.Config, error) {
	kinds, err := hostKinds(c)
	if err != nil {
		return nil, err
	}
	name, _ := os.Hostname()
	if name == "" {
		name = "local"
	}
	outbox, err := filepath.Abs(c.String("outbox"))
	if err != nil {
		return nil, fmt.Errorf("--outbox: %w", err)
	}
	return &host.Config{Name: name, Advertise: advertiseOf(c.String("host"), c.String("public-host")), Bind: c.String("host"),
		Kinds: kinds, OutboxDir: outbox, ChildEnv: []string{"ARENA_LOG_LEVEL=" + c.String("log-level")}}, nil
}

// advertiseOf is the host a machine's processes advertise: public unless
// it is empty or a wildcard, else bind.
func advertiseOf(bind, public string) string {
	switch public {
	case "", "0.0.0.0", "::":
		return bind
	}
	return public
}

func hostCommand() *cli.Command {
	flags := append([]cli.Flag{
		stringFlag("dispatcher", "127.0.0.1:6002", "the dispatcher's host-control address (its --host-listen)"),
		stringFlag("advertise", "127.0.0.1", "the address players and other hosts use for this machine's processes"),
		stringFlag("bind", "", "the address processes listen on (default: --advertise)"),
		stringFlag("name", "", "this host's name in the fleet, unique (default: the hostname)"),
		secretFlag("fleet-token", "the fleet token hosts authenticate with (never passed to processes)"),
		fileFlag("fleet-token-file", "file holding the --fleet-token (keeps it out of the process list)"),
		memcacheFlag(),
		storePrefixFlag(),
		stringFlag("outbox", ".arena/outbox", "directory of the results outbox this host's game servers share; the host applies what they leave there"),
		&cli.StringFlag{Name: "db", EnvVars: env("db"), DefaultText: "the dispatcher's",
			Usage: "results database of this host's processes and outbox (postgres://... or sqlite:PATH); default: the dispatcher's --db, sent over host control. A password here shows in the process list: prefer ARENA_DB or --db-file"},
		fileFlag("db-file", "file holding the --db DSN (keeps a password out of the process list)"),
		boolFlag("tls", "dial the dispatcher with TLS"),
		stringFlag("tls-ca", "", "PEM file of the CA that signed the dispatcher's certificate (default: the system's)"),
		logLevelFlag(),
	}, hostKindFlags(0, true)...)
	return &cli.Command{
		Name:  "host",
		Usage: "run the host of this machine's fight, map and game processes; it dials the dispatcher and keeps its processes running while the dispatcher is away",
		Description: "Run one on every machine of the fleet (docs/hosts.md). The dispatcher places work on the hosts;\n" +
			"a host owns its processes and its port ranges, and takes the fleet back to a restarted dispatcher.",
		Flags:       flags,
		Subcommands: []*cli.Command{hostDrainCommand()},
		Action: func(c *cli.Context) error {
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			cfg, err := hostConfig(c)
			if err != nil {
				return err
			}
			cfg.Log = log
			a, err := host.NewAgent(cfg)
			if err != nil {
				return err
			}
			log.Info("host starting", "name", a.Name(), "dispatcher", cfg.Dispatcher, "advertise", cfg.Advertise)
			return a.Run(c.Context)
		},
	}
}

// hostConfig maps `arena host`'s flags to host.Config.
func hostConfig(c *cli.Context) (host.Config, error) {
	token, err := flagOrFile(c, "fleet-token", "fleet-token-file")
	if err != nil {
		return host.Config{}, err
	}
	kinds, err := hostKinds(c)
	if err != nil {
		return host.Config{}, err
	}
	if err := addGameKinds(c, kinds); err != nil {
		return host.Config{}, err
	}
	outbox, err := filepath.Abs(c.String("outbox"))
	if err != nil {
		return host.Config{}, fmt.Errorf("--outbox: %w", err)
	}
	dsn, err := flagOrFile(c, "db", "db-file")
	if err != nil {
		return host.Config{}, err
	}
	if dsn, err = absDSN(dsn); err != nil {
		return host.Config{}, err
	}
	cfg := host.Config{Name: c.String("name"), Advertise: c.String("advertise"), Bind: c.String("bind"),
		Dispatcher: c.String("dispatcher"), FleetToken: token, Kinds: kinds, OutboxDir: outbox, Database: dsn, DrainOutbox: true,
		Memcache: store.ParseAddrs(c.String("memcache")), ChildEnv: []string{"ARENA_LOG_LEVEL=" + c.String("log-level")}}
	if len(cfg.Memcache) > 0 {
		mc, err := store.NewMemcache(store.MemcacheConfig{Addrs: cfg.Memcache})
		if err != nil {
			return cfg, err
		}
		cfg.Store = store.Prefixed(mc, c.String("store-prefix"))
	}
	if c.Bool("tls") || c.String("tls-ca") != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if ca := c.String("tls-ca"); ca != "" {
			pem, err := os.ReadFile(ca)
			if err != nil {
				return cfg, fmt.Errorf("--tls-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return cfg, fmt.Errorf("--tls-ca: no certificate in %s", ca)
			}
			tc.RootCAs = pool
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

// hostDrainCommand asks the dispatcher to drain a host: no new work, and
// the host exits once its processes are idle or at the deadline.
func hostDrainCommand() *cli.Command {
	return &cli.Command{
		Name:      "drain",
		Usage:     "drain a host: it gets no new work and exits when its processes are idle (or at --deadline)",
		ArgsUsage: "NAME",
		Flags: []cli.Flag{
			stringFlag("url", "http://127.0.0.1:8080", "the dispatcher's HTTP base URL"),
			secretFlag("operator-token", "the operator token"),
			fileFlag("operator-token-file", "file holding the --operator-token"),
			&cli.DurationFlag{Name: "deadline", Value: 10 * time.Minute, Usage: "stop the host's processes by then even if not idle", EnvVars: env("deadline")},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("arena host drain: name the host (arena status lists them)")
			}
			token, err := flagOrFile(c, "operator-token", "operator-token-file")
			if err != nil {
				return err
			}
			body, _ := json.Marshal(map[string]int{"deadline_s": int(c.Duration("deadline").Seconds())})
			ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.String("url"), "/")+"/v1/hosts/"+c.Args().First()+"/drain", bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("arena host drain: %w", err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("arena host drain: %s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			fmt.Printf("host %s draining\n", c.Args().First())
			return nil
		},
	}
}
