package mapserver

import (
	"errors"
	"fmt"
	"time"

	"github.com/arena-game/arena/proc"
	"github.com/arena-game/arena/proto/procpb"
)

// Config holds a map server's limits and timings. Zero fields take the
// defaults below; ConfigFromOptions builds one from the typed options of
// proc.StartRequest (documented in docs/maps.md).
type Config struct {
	// SaveInterval is how often the owner saves each player's state (and
	// renews its lease, which lasts 3 intervals). Option "save-interval",
	// default 2s.
	SaveInterval time.Duration
	// MaxSpeed is the fastest a player may move, in units per second;
	// up to MoveBurst seconds of unused movement is banked. Option
	// "max-speed", default 200.
	MaxSpeed float64
	// ViewRadius is how far a player sees other players. Option
	// "view-radius", default 150.
	ViewRadius float64
	// Tick is the period of position updates (10 Hz by default: at 20 Hz a
	// crowd costs twice the messages). Option "tick", default 100ms.
	Tick time.Duration
	// MaxVisible caps how many players one player is shown (the nearest).
	// Option "max-visible", default 64.
	MaxVisible int
	// SwitchReach is how close to a portal's rectangle a player must be
	// to switch through it with {"type":"switch"}. Option "switch-reach",
	// default 48; a negative value means 0 (the player must stand in it).
	SwitchReach float64
	// MaxMsgRate is the most messages per second a client may send
	// (burst: one second's worth); more are dropped. Option
	// "max-msg-rate", default 40.
	MaxMsgRate float64
	// MaxMessage is the largest client message, in bytes (default 4096);
	// larger closes the connection with 1009.
	MaxMessage int
	// SendQueue is how many outbound messages may wait for a slow client
	// before it is disconnected (1013). Option "send-queue", default 256.
	SendQueue int
	// IdleTimeout closes a silent connection (default 30s); the server
	// pings every IdleTimeout/3.
	IdleTimeout time.Duration
	// SaveWorkers is how many periodic save batches (of up to 64 players:
	// one GetMulti, then one compare-and-swap each) run at once (default 64).
	SaveWorkers int
	// PublicHost, when set, is the host put in the ws:// URL of switch
	// answers (instead of the host the Locator answered) and is accepted
	// as a name of this server in tickets: the advertised host of
	// proc.StartRequest.
	PublicHost string
	// AllowedOrigins are the browser origins allowed to open the map
	// WebSocket besides the defaults (wsconn.OriginAllowed).
	AllowedOrigins []string
}

// MoveBurst is how many seconds of movement a player may bank.
const MoveBurst = 1.0

// Defaults.
const (
	DefaultSaveInterval = 2 * time.Second
	DefaultMaxSpeed     = 200.0
	DefaultViewRadius   = 150.0
	DefaultTick         = 100 * time.Millisecond
	DefaultMaxVisible   = 64
	DefaultSwitchReach  = 48.0
	DefaultMaxMsgRate   = 40.0
)

// LeaseIntervals is how many save intervals a lease lasts: a record whose
// owner has not saved for that long is presumed dead and may be re-pointed
// by Enter.
const LeaseIntervals = 3

func (c Config) withDefaults() Config {
	if c.SaveInterval <= 0 {
		c.SaveInterval = DefaultSaveInterval
	}
	if c.MaxSpeed <= 0 {
		c.MaxSpeed = DefaultMaxSpeed
	}
	if c.ViewRadius <= 0 {
		c.ViewRadius = DefaultViewRadius
	}
	if c.Tick <= 0 {
		c.Tick = DefaultTick
	}
	if c.MaxVisible <= 0 {
		c.MaxVisible = DefaultMaxVisible
	}
	if c.SwitchReach == 0 {
		c.SwitchReach = DefaultSwitchReach
	} else if c.SwitchReach < 0 {
		c.SwitchReach = 0 // explicitly "must stand in the portal"
	}
	if c.MaxMsgRate <= 0 {
		c.MaxMsgRate = DefaultMaxMsgRate
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = 4096
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.SaveWorkers <= 0 {
		c.SaveWorkers = 64
	}
	return c
}

// lease is how long one save keeps the record owned.
func (c Config) lease() time.Duration { return LeaseIntervals * c.SaveInterval }

// ConfigFromOptions builds a Config from the typed options a host passes
// in proc.StartRequest (nil: every default) and returns the world file
// path ("" for the built-in world). Unset fields take their defaults; a
// value out of its range is an error wrapping proc.ErrBadOptions:
// save-interval 50ms..1m, tick 5ms..1s, max-speed 0.001..1e6, view-radius
// 1..1e6, switch-reach 0..1e6 (0: stand in the portal), max-msg-rate
// 1..10000, max-visible 1..10000, send-queue 8..65536.
func ConfigFromOptions(o *procpb.MapOptions) (cfg Config, worldPath string, err error) {
	if o == nil {
		return cfg, "", nil
	}
	var errs []error
	if d, ok := proc.DurationOption(o.SaveInterval); ok {
		cfg.SaveInterval = d
		errs = append(errs, proc.CheckRange("save-interval", d, 50*time.Millisecond, time.Minute))
	}
	if d, ok := proc.DurationOption(o.Tick); ok {
		cfg.Tick = d
		errs = append(errs, proc.CheckRange("tick", d, 5*time.Millisecond, time.Second))
	}
	if o.MaxSpeed != nil {
		cfg.MaxSpeed = o.GetMaxSpeed()
		errs = append(errs, proc.CheckRange("max-speed", cfg.MaxSpeed, 0.001, 1e6))
	}
	if o.ViewRadius != nil {
		cfg.ViewRadius = o.GetViewRadius()
		errs = append(errs, proc.CheckRange("view-radius", cfg.ViewRadius, 1, 1e6))
	}
	if o.SwitchReach != nil {
		cfg.SwitchReach = o.GetSwitchReach()
		errs = append(errs, proc.CheckRange("switch-reach", cfg.SwitchReach, 0, 1e6))
		if cfg.SwitchReach == 0 {
			cfg.SwitchReach = -1 // explicitly "must stand in the portal"
		}
	}
	if o.MaxMsgRate != nil {
		cfg.MaxMsgRate = o.GetMaxMsgRate()
		errs = append(errs, proc.CheckRange("max-msg-rate", cfg.MaxMsgRate, 1, 10000))
	}
	if o.MaxVisible != nil {
		cfg.MaxVisible = int(o.GetMaxVisible())
		errs = append(errs, proc.CheckRange("max-visible", cfg.MaxVisible, 1, 10000))
	}
	if o.SendQueue != nil {
		cfg.SendQueue = int(o.GetSendQueue())
		errs = append(errs, proc.CheckRange("send-queue", cfg.SendQueue, 8, 65536))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, "", fmt.Errorf("map options: %w", err)
	}
	return cfg, o.GetWorld(), nil
}
