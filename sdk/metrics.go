package sdk

import "github.com/prometheus/client_golang/prometheus"

// metrics are a game server's Prometheus series (prefix arena_game_, label
// game).
type metrics struct {
	messages prometheus.Counter
	sent     prometheus.Counter
	errors   *prometheus.CounterVec
	ended    *prometheus.CounterVec
	assigned prometheus.Counter
	joins    prometheus.Counter
	panics   prometheus.Counter
	stuck    prometheus.Counter
	tooBig   prometheus.Counter
	busy     prometheus.Counter
	saves    *prometheus.CounterVec
	// savedBytes over saves{result="ok"} is the mean snapshot size.
	savedBytes prometheus.Counter
	restores   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	reg = prometheus.WrapRegistererWith(prometheus.Labels{"game": s.cfg.Game}, reg)
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		messages: counter("arena_game_messages_total", "Client messages delivered to the game."),
		sent:     counter("arena_game_sent_messages_total", "Messages the game sent to players."),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_game_errors_total", Help: "Error messages sent to clients, by code.",
		}, []string{"code"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_game_rooms_ended_total", Help: "Rooms ended, by reason.",
		}, []string{"reason"}),
		assigned: counter("arena_game_rooms_assigned_total", "Rooms assigned to this process."),
		joins:    counter("arena_game_joins_total", "Accepted joins and rejoins."),
		panics:   counter("arena_game_callback_panics_total", "Game callbacks that panicked (each ended its room)."),
		stuck:    counter("arena_game_callback_stuck_total", "Game callbacks that ran past the callback deadline (each ended its room)."),
		tooBig:   counter("arena_game_oversized_sends_total", "Messages the game tried to send over the size limit (not sent)."),
		busy:     counter("arena_game_inbox_full_total", "Client messages dropped because their room's inbox was full."),
		saves: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_game_state_saves_total", Help: "Room state snapshots written to the store, by result.",
		}, []string{"result"}),
		savedBytes: counter("arena_game_state_saved_bytes_total", "Bytes of room state snapshots written to the store."),
		restores:   counter("arena_game_state_restores_total", "Rooms restored from a snapshot."),
	}
	rooms := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "arena_game_rooms", Help: "Rooms hosted now (the process's load).",
	}, func() float64 { return float64(s.load()) })
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "arena_game_connections", Help: "Open WebSocket connections.",
	}, func() float64 { return float64(s.conns.Load()) })
	reg.MustRegister(m.messages, m.sent, m.errors, m.ended, m.assigned, m.joins, m.panics, m.stuck, m.tooBig, m.busy, m.saves, m.savedBytes, m.restores, rooms, conns)
	return m
}
