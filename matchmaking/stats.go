package matchmaking

import (
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// QueueStats is the matchmaking picture the dashboard and /v1/stats show.
type QueueStats struct {
	Queues        map[string]int `json:"queues"` // players waiting, by profile
	PartyPending  int            `json:"party_pending"`
	InRoom        int            `json:"in_room"`
	Rooms         int            `json:"rooms"`
	MatchesPerMin float64        `json:"matches_per_min"` // rooms formed in the last minute
	RoomsTotal    int64          `json:"rooms_total"`
	Wait          Distribution   `json:"wait_s"` // queue to match, seconds, last 1000 players
	Spread        Distribution   `json:"spread"` // rating spread per room, last 1000 rooms
	LastTickMs    float64        `json:"last_tick_ms"`
	// FunctionRejected counts match function answers thrown away;
	// ProposalsLost, proposals the evaluator turned down.
	FunctionRejected int64 `json:"function_rejected"`
	ProposalsLost    int64 `json:"proposals_lost"`
}

// Distribution summarises recent samples: quantiles and a histogram over
// Bounds (Hist[i] counts samples <= Bounds[i]; the last bucket is the rest).
type Distribution struct {
	Count  int       `json:"count"`
	Mean   float64   `json:"mean"`
	P50    float64   `json:"p50"`
	P95    float64   `json:"p95"`
	P99    float64   `json:"p99"`
	Max    float64   `json:"max"`
	Bounds []float64 `json:"bounds"`
	Hist   []int     `json:"hist"`
}

var (
	waitBounds   = []float64{0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55}
	spreadBounds = []float64{0, 10, 25, 50, 100, 150, 200, 300, 500, 1000}
)

// statsRecorder keeps recent samples; owned by the matchmaker goroutine.
type statsRecorder struct {
	waits   ring
	spreads ring
	// formed counts rooms formed by tick (oldest first), for the rooms
	// of the last minute.
	formed   []formedAt
	total    int64
	lastTick time.Duration
	// rejectedN and lostN count function answers rejected and proposals
	// lost (for QueueStats).
	rejectedN, lostN int64

	matches     prometheus.Counter
	waitHist    prometheus.Observer
	spreadH     prometheus.Observer
	tickHist    *prometheus.HistogramVec
	queueSize   *prometheus.GaugeVec
	refusedC    prometheus.Counter
	droppedC    prometheus.Counter
	expiredC    *prometheus.CounterVec
	rejectedC   *prometheus.CounterVec
	lostC       prometheus.Counter
	reloadsC    *prometheus.CounterVec
	backfilledC prometheus.Counter
	bfRefusedC  prometheus.Counter
}

type formedAt struct {
	at    time.Time
	rooms int
}

type ring struct {
	v    []float64
	next int
}

func (r *ring) add(x float64) {
	if len(r.v) < 1000 {
		r.v = append(r.v, x)
		return
	}
	r.v[r.next] = x
	r.next = (r.next + 1) % len(r.v)
}

func newStatsRecorder() *statsRecorder { return &statsRecorder{} }

// register exports the recorder's metrics on reg.
func (s *statsRecorder) register(reg prometheus.Registerer) {
	matches := prometheus.NewCounter(prometheus.CounterOpts{Name: "arena_rooms_formed_total", Help: "Rooms the matcher formed."})
	wait := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "arena_match_wait_seconds", Help: "Time from queue to match.",
		Buckets: []float64{0.5, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89}})
	spread := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "arena_room_rating_spread", Help: "Highest minus lowest rating in a formed room.",
		Buckets: []float64{0, 10, 25, 50, 100, 150, 200, 300, 500, 1000}})
	tick := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "arena_match_tick_seconds", Help: "Time of one tick of one profile's match function (all its pools).",
		Buckets: prometheus.ExponentialBuckets(1e-5, 4, 10)}, []string{"profile"})
	queue := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "arena_queue_players", Help: "Players waiting, by profile."}, []string{"profile"})
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "arena_mm_requests_refused_total", Help: "Matchmaker requests refused because its mailbox was full."})
	dropped := prometheus.NewCounter(prometheus.CounterOpts{Name: "arena_mm_events_dropped_total", Help: "Fleet events the matchmaker dropped because its events lane was full."})
	expired := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_mm_tickets_expired_total", Help: "Tickets that lapsed unmatched (TTL, or their profile removed), by profile."}, []string{"profile"})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_mm_function_rejected_total", Help: "Match function answers rejected (the profile lost that tick), by profile, function and reason."}, []string{"profile", "function", "reason"})
	lost := prometheus.NewCounter(prometheus.CounterOpts{Name: "arena_mm_proposals_lost_total", Help: "Proposals the evaluator turned down because a better one took a ticket."})
	reloads := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "arena_mm_profile_reloads_total", Help: "Profile file reloads, by result (ok, error: the old profiles stayed)."}, []string{"result"})
	reg.MustRegister(matches, wait, spread, tick, queue, refused, dropped, expired, rejected, lost, reloads)
	s.reloadsC = reloads
	s.backfilledC = prometheus.NewCounter(prometheus.CounterOpts{Name: "arena_mm_backfilled_players_total", Help: "Players running rooms accepted from the queue (backfill)."})
	s.bfRefusedC = prometheus.NewCounter(prometheus.CounterOpts{Name: "arena_mm_backfills_refused_total", Help: "Backfills a room refused (full, over, gone): their players went back to the queue."})
	reg.MustRegister(s.backfilledC, s.bfRefusedC)
	s.matches, s.waitHist, s.spreadH, s.tickHist, s.queueSize = matches, wait, spread, tick, queue
	s.refusedC, s.droppedC, s.expiredC, s.rejectedC, s.lostC = refused, dropped, expired, rejected, lost
}

// reloaded counts a profile reload (any goroutine).
func (s *statsRecorder) reloaded(err error) {
	if s.reloadsC == nil {
		return
	}
	if err != nil {
		s.reloadsC.WithLabelValues("error").Inc()
	} else {
		s.reloadsC.WithLabelValues("ok").Inc()
	}
}

// backfilled counts players a running room accepted (err nil), or a
// backfill it refused.
func (s *statsRecorder) backfilled(n int, err error) {
	switch {
	case s.backfilledC == nil:
	case err != nil:
		s.bfRefusedC.Inc()
	default:
		s.backfilledC.Add(float64(n))
	}
}

// expired counts a lapsed ticket.
func (s *statsRecorder) expired(profile string) {
	if s.expiredC != nil {
		s.expiredC.WithLabelValues(profile).Inc()
	}
}

// rejected counts a match function answer thrown away.
func (s *statsRecorder) rejected(profile, function, reason string) {
	s.rejectedN++
	if s.rejectedC != nil {
		s.rejectedC.WithLabelValues(profile, function, reason).Inc()
	}
}

// evaluated counts proposals the evaluator turned down.
func (s *statsRecorder) evaluated(lost int) {
	s.lostN += int64(lost)
	if s.lostC != nil {
		s.lostC.Add(float64(lost))
	}
}

// refused counts a request refused by a full mailbox (any goroutine).
func (s *statsRecorder) refused() {
	if s.refusedC != nil {
		s.refusedC.Inc()
	}
}

// dropped counts a fleet event dropped by a full lane (any goroutine).
func (s *statsRecorder) dropped() {
	if s.droppedC != nil {
		s.droppedC.Inc()
	}
}

func (s *statsRecorder) matched(wait time.Duration) {
	s.waits.add(wait.Seconds())
	if s.waitHist != nil {
		s.waitHist.Observe(wait.Seconds())
	}
}

// room records a room formed at now (the matchmaker's goroutine; its
// metrics are observeRoom's).
func (s *statsRecorder) room(spread int, now time.Time) {
	s.spreads.add(float64(spread))
	if n := len(s.formed); n > 0 && s.formed[n-1].at.Equal(now) {
		s.formed[n-1].rooms++
	} else {
		s.formed = append(s.formed, formedAt{now, 1})
	}
	s.total++
}

// observeRoom exports a formed room's spread and its players' waits
// (seconds) as metrics (any goroutine).
func (s *statsRecorder) observeRoom(spread int, waits []float64) {
	if s.matches == nil {
		return
	}
	s.matches.Inc()
	s.spreadH.Observe(float64(spread))
	for _, w := range waits {
		s.waitHist.Observe(w)
	}
}

// waited records players' waits, seconds (the matchmaker's goroutine;
// the ring keeps the last ones).
func (s *statsRecorder) waited(waits []float64) {
	for _, w := range waits[max(0, len(waits)-1000):] {
		s.waits.add(w)
	}
}

func (s *statsRecorder) tickSeconds(profile string, d time.Duration) {
	s.lastTick = d
	if s.tickHist != nil {
		s.tickHist.WithLabelValues(profile).Observe(d.Seconds())
	}
}

func (s *statsRecorder) fill(qs *QueueStats, now time.Time) {
	cut, rooms := 0, 0
	for cut < len(s.formed) && now.Sub(s.formed[cut].at) > time.Minute {
		cut++
	}
	if cut > 0 {
		s.formed = append(s.formed[:0], s.formed[cut:]...)
	}
	for _, f := range s.formed {
		rooms += f.rooms
	}
	qs.MatchesPerMin = float64(rooms)
	qs.RoomsTotal = s.total
	qs.Wait = distribution(s.waits.v, waitBounds)
	qs.Spread = distribution(s.spreads.v, spreadBounds)
	qs.LastTickMs = float64(s.lastTick.Microseconds()) / 1000
	qs.FunctionRejected, qs.ProposalsLost = s.rejectedN, s.lostN
	if s.queueSize != nil {
		for mode, n := range qs.Queues {
			s.queueSize.WithLabelValues(mode).Set(float64(n))
		}
	}
}

func distribution(v []float64, bounds []float64) Distribution {
	d := Distribution{Count: len(v), Bounds: bounds, Hist: make([]int, len(bounds)+1)}
	if len(v) == 0 {
		return d
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	sum := 0.0
	for _, x := range s {
		sum += x
		i := sort.SearchFloat64s(bounds, x)
		d.Hist[i]++
	}
	q := func(p float64) float64 { return s[int(p*float64(len(s)-1))] }
	d.Mean, d.P50, d.P95, d.P99, d.Max = sum/float64(len(s)), q(0.5), q(0.95), q(0.99), s[len(s)-1]
	return d
}
