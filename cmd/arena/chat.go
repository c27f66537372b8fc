package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/arena-game/arena/chatserver"
	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proc"
)

// chatCommand runs the chat server: by hand (flags below) or, when spawned
// by the dispatcher in `arena up`, as a fleet process configured over the
// plugin channel.
func chatCommand() *cli.Command {
	return &cli.Command{
		Name:  "chat",
		Usage: "run the chat server (world, announce, room and private channels; see docs/chat.md)",
		Flags: []cli.Flag{
			stringFlag("listen", ":7600", "chat WebSocket address (ws://HOST:PORT/ws)"),
			memcacheFlag(),
			storePrefixFlag(),
			allowedOriginsFlag(),
			secretFlag("secret", "cluster secret that signs player and room tokens (required)"),
			secretFlag("operator-token", "operator token: ?operator=TOKEN may post to announce; empty: nobody may"),
			&cli.Float64Flag{Name: "rate", Value: 5, Usage: "messages per second per player (all its connections together)", EnvVars: env("rate")},
			intFlag("burst", 10, "per-player burst of messages"),
			&cli.Float64Flag{Name: "world-rate", Value: 100, Usage: "messages per second on the world channel as a whole (negative: no cap)", EnvVars: env("world-rate")},
			intFlag("max-conns", 200000, "connections accepted before answering 503"),
			intFlag("send-queue", 256, "outbound frames queued per connection before it is disconnected as a slow consumer"),
			logLevelFlag(),
		},
		Action: runChat,
	}
}

func runChat(c *cli.Context) error {
	if proc.StartedByHost() {
		var lv slog.Level
		_ = lv.UnmarshalText([]byte(c.String("log-level")))
		p := chatserver.NewProcess(proc.NewLogger(os.Stderr, lv))
		err := proc.Serve(proc.Server{Lifecycle: p, OnOrphan: func() { p.Stop(2 * time.Second) }})
		p.Stop(2 * time.Second)
		return err
	}
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	signer, err := auth.NewSigner(c.String("secret"))
	if err != nil {
		return errors.New("arena chat: --secret (ARENA_SECRET) is required: the cluster secret that signs player tokens")
	}
	cfg := chatserver.Config{
		OperatorToken: c.String("operator-token"),
		Rate:          c.Float64("rate"),
		Burst:         c.Int("burst"),
		WorldRate:     c.Float64("world-rate"),
		MaxConns:      c.Int("max-conns"),
	}
	cfg.WS.SendQueue = c.Int("send-queue")
	cfg.WS.AllowedOrigins = origins(c)
	if n, err := chatserver.RaiseFileLimit(uint64(cfg.MaxConns) + 1024); err != nil {
		log.Warn("could not raise the open-file limit; connections are capped by it", "limit", n, "err", err)
	}
	st, closeStore, err := chatserver.OpenStore(store.ParseAddrs(c.String("memcache")), c.String("store-prefix"), log)
	if err != nil {
		return err
	}
	defer closeStore()
	srv, err := chatserver.New(st, signer, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return err
	}
	log.Info("chat server listening", "addr", ln.Addr().String(), "operator", cfg.OperatorToken != "")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err = <-done:
	case <-c.Context.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(ctx); serr != nil {
		log.Warn("chat shutdown incomplete", "err", serr)
	}
	log.Info("chat server stopped")
	return err
}
