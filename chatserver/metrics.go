package chatserver

import "github.com/prometheus/client_golang/prometheus"

// metrics are the chat server's Prometheus metrics, all prefixed arena_chat_.
type metrics struct {
	connections   prometheus.Gauge
	online        prometheus.Gauge
	channels      prometheus.Gauge
	accepted      *prometheus.CounterVec // by kind: world, announce, room, private
	delivered     prometheus.Counter
	rejected      *prometheus.CounterVec // by error code
	refused       *prometheus.CounterVec // upgrades refused, by reason
	slowConsumers prometheus.Counter
	floodCloses   prometheus.Counter
	fanout        prometheus.Histogram
	historyErrors prometheus.Counter
	dropped       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arena_chat_connections", Help: "Open chat WebSocket connections."}),
		online: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arena_chat_online_players", Help: "Distinct players in the world channel."}),
		channels: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "arena_chat_channels", Help: "Live channels (world, announce and rooms with members)."}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_chat_messages_total", Help: "Messages accepted, by channel kind (world, announce, room, private)."}, []string{"kind"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_chat_deliveries_total", Help: "Frames queued to connections by fan-out (messages times recipients)."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_chat_rejected_total", Help: "Client messages refused, by error code."}, []string{"code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "arena_chat_upgrades_refused_total", Help: "WebSocket upgrades refused before upgrading, by reason."}, []string{"reason"}),
		slowConsumers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_chat_slow_consumer_closes_total", Help: "Connections closed because their outbound queue was full."}),
		floodCloses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_chat_flood_closes_total", Help: "Connections closed for flooding past the rate limit."}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "arena_chat_fanout_seconds", Help: "Time for one channel shard to queue a message to all its members.",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10)}),
		historyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_chat_history_write_errors_total", Help: "History writes to memcached that failed (the messages were delivered)."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "arena_chat_dropped_total", Help: "Messages a channel shard dropped undelivered because it fell a whole queue behind (they stay in history)."}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.online, m.channels, m.accepted, m.delivered, m.rejected,
			m.refused, m.slowConsumers, m.floodCloses, m.fanout, m.historyErrors, m.dropped)
	}
	return m
}
