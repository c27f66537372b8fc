package fightserver

import "github.com/prometheus/client_golang/prometheus"

// metrics are a fight server's Prometheus series (prefix arena_fight_).
type metrics struct {
	events   [len(eventNames)]prometheus.Counter
	relayed  prometheus.Counter
	errors   *prometheus.CounterVec
	ended    *prometheus.CounterVec
	assigned prometheus.Counter
	joins    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Server) *metrics {
	m := &metrics{}
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arena_fight_events_total", Help: "Valid client events received, by event.",
	}, []string{"event"})
	for k := 1; k < len(eventNames); k++ {
		m.events[k] = events.WithLabelValues(eventNames[k])
	}
	m.relayed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arena_fight_relayed_messages_total", Help: "Event messages sent to room members.",
	})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arena_fight_errors_total", Help: "Error messages sent to clients, by code.",
	}, []string{"code"})
	m.ended = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "arena_fight_rooms_ended_total", Help: "Rooms ended, by reason.",
	}, []string{"reason"})
	m.assigned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arena_fight_rooms_assigned_total", Help: "Rooms assigned to this process.",
	})
	m.joins = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "arena_fight_joins_total", Help: "Accepted joins and rejoins.",
	})
	rooms := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "arena_fight_rooms", Help: "Rooms hosted now (the process's load).",
	}, func() float64 { return float64(s.load()) })
	conns := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "arena_fight_connections", Help: "Open WebSocket connections.",
	}, func() float64 { return float64(s.conns.Load()) })
	reg.MustRegister(events, m.relayed, m.errors, m.ended, m.assigned, m.joins, rooms, conns)
	return m
}
