package chatserver

import (
	"fmt"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/arena-game/arena/internal/wsconn"
)

// DefaultPort is the chat server's usual port.
const DefaultPort = 7600

// Config is the chat server's configuration. Zero fields take the defaults
// documented on each field (see also docs/chat.md).
type Config struct {
	// OperatorToken is the shared secret an operator presents with
	// ?operator=TOKEN to post to announce (and as a Bearer token to
	// POST /v1/announce). Empty: nobody may post to announce.
	OperatorToken string
	// MaxText is the longest message text in runes (default 500).
	MaxText int
	// HistorySize is how many recent messages a channel keeps (default 50).
	HistorySize int
	// HistoryFrame is the largest history frame sent on join (default
	// 32 KiB); longer histories are split over several frames.
	HistoryFrame int
	// Rate and Burst are the per-player token bucket shared by all of a
	// player's connections: every client message costs one token
	// (defaults 5 per second, burst 10).
	Rate  float64
	Burst int
	// FloodStrikes is how many rate-limited messages a connection may send
	// (refilling at one per second) before it is closed with 1008
	// (default 20).
	FloodStrikes int
	// WorldRate and WorldBurst cap messages per second on the world
	// channel as a whole (defaults 100 per second, burst 200; a negative
	// WorldRate disables the cap).
	WorldRate  float64
	WorldBurst int
	// MaxChannels is how many channels one connection may be in,
	// world and announce included (default 32).
	MaxChannels int
	// MaxConns refuses upgrades (HTTP 503) past this many connections
	// (default 200000).
	MaxConns int
	// Shards is how many shard goroutines own world's and announce's
	// membership (default 2 x GOMAXPROCS, at least 4).
	Shards int
	// OnlineInterval is how often a changed world online count is sent to
	// world (default 1s).
	OnlineInterval time.Duration
	// WS are the per-connection WebSocket limits (defaults: 64 KiB
	// messages, 256 queued outbound frames, 60 s idle, 25 s pings).
	// WriteNow is always on for chat.
	WS wsconn.Options
	// Registry receives the server's metrics and is served on /metrics
	// (nil: a registry of the server's own).
	Registry *prometheus.Registry
}

func (c Config) withDefaults() Config {
	if c.MaxText <= 0 {
		c.MaxText = 500
	}
	if c.HistorySize <= 0 {
		c.HistorySize = 50
	}
	if c.HistoryFrame <= 0 {
		c.HistoryFrame = 32 << 10
	}
	if c.Rate <= 0 {
		c.Rate = 5
	}
	if c.Burst <= 0 {
		c.Burst = 10
	}
	if c.FloodStrikes <= 0 {
		c.FloodStrikes = 20
	}
	if c.WorldRate == 0 {
		c.WorldRate = 100
	}
	if c.WorldBurst <= 0 {
		c.WorldBurst = 200
	}
	if c.MaxChannels <= 0 {
		c.MaxChannels = 32
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 200000
	}
	if c.Shards <= 0 {
		c.Shards = max(4, 2*runtime.GOMAXPROCS(0))
	}
	if c.OnlineInterval <= 0 {
		c.OnlineInterval = time.Second
	}
	if c.WS.MaxMessage <= 0 {
		c.WS.MaxMessage = 64 << 10
	}
	// Chat fans one message out to many connections: write each at once
	// from the shard goroutine instead of waking a writer per connection.
	c.WS.WriteNow = true
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	return c
}

func (c Config) validate() error {
	if c.MaxChannels < 2 {
		return fmt.Errorf("chat config: max channels %d: need at least 2 (world and announce)", c.MaxChannels)
	}
	if c.HistorySize > 1000 {
		return fmt.Errorf("chat config: history size %d: at most 1000", c.HistorySize)
	}
	if c.MaxText > 10000 {
		return fmt.Errorf("chat config: max text %d: at most 10000", c.MaxText)
	}
	return nil
}
