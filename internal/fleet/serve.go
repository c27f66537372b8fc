package fleet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// StartedByDispatcher reports whether this process was started by a
// dispatcher (the go-plugin handshake cookie is in the environment).
func StartedByDispatcher() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}

// ErrManualStart is returned by Serve when the process was started by hand.
var ErrManualStart = fmt.Errorf("this command is run by the dispatcher as a fleet process, not by hand: " +
	"start `arena dispatcher` (or `arena up`) and it spawns fight and map servers as needed")

// Serve serves impl as a go-plugin gRPC plugin until the dispatcher stops
// it, or until the dispatcher dies (the parent pid changes), in which case
// it calls onOrphan (if not nil) and exits. It refuses with ErrManualStart
// when not started by a dispatcher. Nothing may be written to stdout before
// Serve: go-plugin speaks its handshake there.
func Serve(impl Process, onOrphan func()) error {
	if !StartedByDispatcher() {
		return ErrManualStart
	}
	go watchParent(os.Getppid(), onOrphan)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         map[string]plugin.Plugin{PluginName: &GRPCPlugin{Impl: impl}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Warn}),
	})
	return nil
}

// watchParent exits the process when its parent changes: the dispatcher
// died (even with kill -9) and this process was re-parented. No fleet
// process outlives its dispatcher.
func watchParent(ppid int, onOrphan func()) {
	for range time.Tick(250 * time.Millisecond) {
		if os.Getppid() != ppid {
			if onOrphan != nil {
				done := make(chan struct{})
				go func() { onOrphan(); close(done) }()
				select {
				case <-done:
				case <-time.After(2 * time.Second):
				}
			}
			os.Exit(3)
		}
	}
}

// NewProcessLogger returns the slog logger a fleet process uses: JSON lines
// on stderr in hclog's shape (@level, @message, @timestamp), which the
// dispatcher's go-plugin client parses and forwards tagged with the
// process's kind and port.
func NewProcessLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				lv := a.Value.Any().(slog.Level)
				s := "info"
				switch {
				case lv >= slog.LevelError:
					s = "error"
				case lv >= slog.LevelWarn:
					s = "warn"
				case lv >= slog.LevelInfo:
					s = "info"
				default:
					s = "debug"
				}
				return slog.String("@level", s)
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

// DefaultContext is a convenience for RPC calls made outside a request.
func DefaultContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 5*time.Second)
}
