package mapserver

import (
	"github.com/arena-game/arena/proc"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one map server's Prometheus metrics.
type metrics struct {
	players        *prometheus.GaugeVec   // map
	connections    prometheus.Gauge       //
	claims         *prometheus.CounterVec // result: ok or an error code
	handoffs       *prometheus.CounterVec // result
	moves          *prometheus.CounterVec // result: ok, too_fast, out_of_bounds
	saves          *prometheus.CounterVec // result: ok, lost, error, skipped
	kicks          *prometheus.CounterVec // reason
	saveSeconds    prometheus.Histogram
	handoffSeconds prometheus.Histogram
	claimSeconds   prometheus.Histogram
	tickSeconds    prometheus.Histogram
	messagesOut    prometheus.Counter
	busy           *prometheus.CounterVec // type: join, move, switch
}

func newMetrics(reg prometheus.Registerer) *metrics {
	lat := []float64{.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1}
	m := &metrics{
		players: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "arena_map_players",
			Help: "Players on each map instance of this process."}, []string{"map"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "arena_map_connections",
			Help: "Open WebSocket connections."}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_map_claims_total",
			Help: "Ticket claims by result (ok or the error code)."}, []string{"result"}),
		handoffs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_map_handoffs_total",
			Help: "Outgoing handoffs (switches and drain handoffs) by result."}, []string{"result"}),
		moves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_map_moves_total",
			Help: "Moves by result."}, []string{"result"}),
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_map_saves_total",
			Help: "Player state saves by result."}, []string{"result"}),
		kicks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_map_kicks_total",
			Help: "Players disconnected by the server, by reason."}, []string{"reason"}),
		saveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "arena_map_save_seconds",
			Help: "Time to save one player's state (get + cas).", Buckets: lat}),
		handoffSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "arena_map_handoff_out_seconds",
			Help: "Time from a switch request to the switch answer (locate, get + cas, mint).", Buckets: lat}),
		claimSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "arena_map_claim_seconds",
			Help: "Time to verify a ticket and claim the record.", Buckets: lat}),
		tickSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "arena_map_tick_seconds",
			Help: "Time one map instance spends on one tick of interest updates.", Buckets: lat}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "arena_map_messages_sent_total",
			Help: "Messages queued to clients."}),
		busy: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_map_busy_total",
			Help: "Joins, moves and switches refused with busy because their map instance's queue was full."}, []string{"type"}),
	}
	m.players = proc.Register(reg, m.players)
	m.connections = proc.Register(reg, m.connections)
	m.claims = proc.Register(reg, m.claims)
	m.handoffs = proc.Register(reg, m.handoffs)
	m.moves = proc.Register(reg, m.moves)
	m.saves = proc.Register(reg, m.saves)
	m.kicks = proc.Register(reg, m.kicks)
	m.saveSeconds = proc.Register(reg, m.saveSeconds)
	m.handoffSeconds = proc.Register(reg, m.handoffSeconds)
	m.claimSeconds = proc.Register(reg, m.claimSeconds)
	m.tickSeconds = proc.Register(reg, m.tickSeconds)
	m.messagesOut = proc.Register(reg, m.messagesOut)
	m.busy = proc.Register(reg, m.busy)
	return m
}
