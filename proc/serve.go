package proc

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/arena-game/arena/internal/store"
)

// StartedByHost reports whether this process was started by an arena host
// (the go-plugin handshake cookie is in its environment).
func StartedByHost() bool {
	return os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue
}

// ErrManualStart is returned by Serve when the process was started by hand.
var ErrManualStart = errors.New("this command is run by an arena host as a fleet process, not by hand: " +
	"start `arena up` (or `arena dispatcher --local-host`, or `arena host`) and it spawns processes as needed")

// Server is what a Go process serves: Lifecycle always; Rooms and Maps
// when the process has those capabilities (nil otherwise).
type Server struct {
	Lifecycle Lifecycle
	Rooms     Rooms
	Maps      Maps
	// OnOrphan, if set, runs when the host dies (the parent process
	// changes) before the process exits; it gets at most 2 s.
	OnOrphan func()
}

// Serve serves s as a go-plugin gRPC plugin until the host stops it, or
// until the host dies, in which case it runs s.OnOrphan and exits: no
// process outlives its host. It returns ErrManualStart when the process was
// not started by a host. Nothing may be written to stdout before Serve:
// go-plugin speaks its handshake there.
func Serve(s Server) error {
	if !StartedByHost() {
		return ErrManualStart
	}
	plugins := map[string]plugin.Plugin{PluginLifecycle: &LifecyclePlugin{Impl: s.Lifecycle}}
	if s.Rooms != nil {
		plugins[PluginRooms] = &RoomsPlugin{Impl: s.Rooms}
	}
	if s.Maps != nil {
		plugins[PluginMaps] = &MapsPlugin{Impl: s.Maps}
	}
	go watchParent(os.Getppid(), s.OnOrphan)
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         plugins,
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Warn}),
	})
	return nil
}

// watchParent exits the process when its parent changes: the host died
// (even with kill -9) and this process was re-parented. The host also sets
// a parent-death signal; this is the second line.
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

// NewLogger returns the slog logger a Go process uses: JSON lines on w
// (stderr) in hclog's shape (@level, @message, @timestamp), which the
// host's go-plugin client parses and forwards tagged with the process's
// kind and port.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
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
				lv, _ := a.Value.Any().(slog.Level)
				s := "debug"
				switch {
				case lv >= slog.LevelError:
					s = "error"
				case lv >= slog.LevelWarn:
					s = "warn"
				case lv >= slog.LevelInfo:
					s = "info"
				}
				return slog.String("@level", s)
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	}))
}

// NewRegistry returns the Prometheus registry an arena process serves on
// its /metrics: the Go runtime's series (go_*), the process's (process_*)
// and the store's (arena_store_errors_total) are registered; the server
// adds its own.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), store.Collector())
	return r
}

// Register registers c on reg and returns it, or returns the collector of
// the same description already registered there (several servers of one
// kind in one process, as tests run them, share their series). Any other
// registration error panics: it is a programming error.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if old, ok := are.ExistingCollector.(T); ok {
				return old
			}
		}
		panic("register metrics: " + err.Error())
	}
	return c
}
