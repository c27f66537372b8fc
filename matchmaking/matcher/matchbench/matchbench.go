// Package matchbench is `arena bench match`: matchmaking simulations in
// simulated time (no sleeping) that measure how fast matcher.Pool ticks and
// how good its rooms are, beside the seed's rule on the same tickets and
// ticks. Two workloads:
//
//   - Batch: N tickets with ratings Normal(1500, 300), rounded and clipped
//     to [0, 3000], all joining at t=0; ticks at t=0, 1, 2, ... seconds
//     until fewer players than a room are left or MaxTicks ticks ran.
//   - Steady: R arrivals per simulated second (each at a random moment of
//     its second, with a rating as above) for D seconds, a tick at the end
//     of every second; waits (arrival to room) and spreads are reported.
//
// The seed's figures come from matcher.SeedTick (the seed's rooms in
// O(N log N)); its speed baseline from seedLiteral, the seed's own loop
// (re-sort and rescan after every room), timed on the same ticks when the
// pool is small enough for its quadratic cost.
package matchbench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/arena-game/arena/matchmaking/matcher"
)

// Rating distribution of the simulated players.
const (
	RatingMean  = 1500
	RatingSD    = 300
	RatingFloor = 0
	RatingCeil  = 3000
)

// epoch is simulated t=0.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return epoch.Add(time.Duration(sec * float64(time.Second))) }

// Rating draws one rating: Normal(1500, 300) rounded, clipped to [0, 3000].
func Rating(rng *rand.Rand) int {
	r := int(math.Round(rng.NormFloat64()*RatingSD + RatingMean))
	return min(max(r, RatingFloor), RatingCeil)
}

// newRand is the run's random source for a seed.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x6172656e61)) }

// BatchOptions configures Batch.
type BatchOptions struct {
	Tickets  int
	Seed     uint64
	Config   matcher.Config
	MaxTicks int // 0 means 20
	// SeedMax: the seed's rule runs on the same pool when Tickets <= SeedMax.
	SeedMax int
	// LiteralMax: the seed's own quadratic loop is timed when Tickets <=
	// LiteralMax.
	LiteralMax int
}

// BatchResult is the batch workload's report (JSON field names are part of
// the bench's output contract).
type BatchResult struct {
	Mode            string  `json:"mode"` // "batch"
	Tickets         int     `json:"tickets"`
	Seed            uint64  `json:"seed"`
	RoomSize        int     `json:"room_size"`
	WindowBase      float64 `json:"window_base"`
	WindowPerSecond float64 `json:"window_per_second"`
	Tighten         bool    `json:"tighten"`
	Ticks           int     `json:"ticks"`

	Rooms        int     `json:"rooms"`
	Left         int     `json:"left"`
	Seconds      float64 `json:"seconds"` // wall time: adding every ticket and every tick
	SlowestTickS float64 `json:"slowest_tick_s"`
	MeanTickS    float64 `json:"mean_tick_s"`
	FirstTickS   float64 `json:"first_tick_s"` // includes sorting all N
	// CPU seconds (the whole process's, so GC work counts) per tick:
	// unlike wall time, not inflated when other processes hold the CPUs.
	SlowestTickCPUS float64 `json:"slowest_tick_cpu_s"`
	MeanTickCPUS    float64 `json:"mean_tick_cpu_s"`
	MeanSpread      float64 `json:"mean_spread"`
	MaxSpread       int     `json:"max_spread"`

	// The seed's rule on the same pool and ticks (nil when skipped).
	SeedRooms      *int     `json:"seed_rooms"`
	SeedLeft       *int     `json:"seed_left"`
	SeedMeanSpread *float64 `json:"seed_mean_spread"`
	SeedMaxSpread  *int     `json:"seed_max_spread"`
	// SameRoomsAsSeed: every tick formed exactly the seed's rooms.
	SameRoomsAsSeed *bool `json:"same_rooms_as_seed"`

	// The seed's own algorithm, timed on the same ticks (nil when skipped),
	// and how many times slower its slowest tick is than Pool's.
	SeedLiteralSeconds      *float64 `json:"seed_literal_seconds"`
	SeedLiteralSlowestTickS *float64 `json:"seed_literal_slowest_tick_s"`
	SlowestTickSpeedup      *float64 `json:"slowest_tick_speedup"`

	CPUs      int    `json:"cpus"`
	GoVersion string `json:"go_version"`
	// LoadAverage is the machine's 1-minute load average when the run
	// ended (0 where unknown): above the CPU count, other processes were
	// competing for the CPUs and wall times are inflated.
	LoadAverage float64 `json:"load_average"`
}

// tally sums up rooms.
type tally struct {
	rooms, maxSpread int
	spread           int64
}

func (t *tally) add(rooms []matcher.Room) {
	for _, r := range rooms {
		t.rooms++
		t.spread += int64(r.Spread)
		t.maxSpread = max(t.maxSpread, r.Spread)
	}
}

func (t tally) mean() float64 {
	if t.rooms == 0 {
		return 0
	}
	return float64(t.spread) / float64(t.rooms)
}

func checkConfig(cfg matcher.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("bench match: %w", err)
	}
	return nil
}

// BatchTickets is the batch workload's pool: n solos at t=0.
func BatchTickets(n int, seed uint64) []matcher.Ticket {
	rng := newRand(seed)
	ts := make([]matcher.Ticket, n)
	for i := range ts {
		ts[i] = matcher.Ticket{ID: strconv.Itoa(i), Rating: Rating(rng), Members: 1, Enqueued: epoch}
	}
	return ts
}

// Batch runs the batch workload.
func Batch(o BatchOptions) (BatchResult, error) {
	if err := checkConfig(o.Config); err != nil {
		return BatchResult{}, err
	}
	if o.Tickets < 0 {
		return BatchResult{}, errors.New("bench match: negative --tickets")
	}
	if o.MaxTicks <= 0 {
		o.MaxTicks = 20
	}
	cfg := o.Config
	k := cfg.RoomSize
	tickets := BatchTickets(o.Tickets, o.Seed)
	res := BatchResult{
		Mode: "batch", Tickets: o.Tickets, Seed: o.Seed, RoomSize: k,
		WindowBase: cfg.WindowBase, WindowPerSecond: cfg.WindowPerSecond, Tighten: cfg.Tighten,
		CPUs: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}

	// The seed's rule first (untimed), so Pool's run can compare each tick.
	var seedTicks [][]matcher.Room
	if o.Tickets <= o.SeedMax {
		var st tally
		waiting := slices.Clone(tickets)
		for tick := 0; tick < o.MaxTicks && players(waiting) >= k; tick++ {
			var rooms []matcher.Room
			rooms, waiting = matcher.SeedTick(cfg, waiting, at(float64(tick)))
			st.add(rooms)
			seedTicks = append(seedTicks, rooms)
		}
		mean, left := st.mean(), len(waiting)
		res.SeedRooms, res.SeedLeft, res.SeedMeanSpread, res.SeedMaxSpread = &st.rooms, &left, &mean, &st.maxSpread
	}

	runtime.GC()
	var t tally
	same := true
	start := time.Now()
	p := matcher.NewPool(cfg)
	for _, tk := range tickets {
		if err := p.Add(tk); err != nil {
			return res, fmt.Errorf("bench match: %w", err)
		}
	}
	for tick := 0; tick < o.MaxTicks && p.Players() >= k; tick++ {
		c0, t0 := cpuTime(), time.Now()
		rooms := p.Tick(at(float64(tick)))
		d, cpu := time.Since(t0).Seconds(), (cpuTime() - c0).Seconds()
		if tick == 0 {
			res.FirstTickS = d
		}
		res.SlowestTickS = max(res.SlowestTickS, d)
		res.SlowestTickCPUS = max(res.SlowestTickCPUS, cpu)
		res.MeanTickS += d
		res.MeanTickCPUS += cpu
		res.Ticks++
		t.add(rooms)
		if seedTicks != nil && (tick >= len(seedTicks) || !sameRooms(rooms, seedTicks[tick])) {
			same = false
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.Rooms, res.Left, res.MeanSpread, res.MaxSpread = t.rooms, p.Len(), t.mean(), t.maxSpread
	if res.Ticks > 0 {
		res.MeanTickS /= float64(res.Ticks)
		res.MeanTickCPUS /= float64(res.Ticks)
	}
	if seedTicks != nil {
		same = same && len(seedTicks) == res.Ticks
		res.SameRoomsAsSeed = &same
	}

	if o.Tickets <= o.LiteralMax {
		seedTicks = nil
		runtime.GC()
		slowest := 0.0
		start := time.Now()
		waiting := slices.Clone(tickets)
		for tick := 0; tick < o.MaxTicks && players(waiting) >= k; tick++ {
			t0 := time.Now()
			_, waiting = seedLiteral(cfg, waiting, at(float64(tick)))
			slowest = max(slowest, time.Since(t0).Seconds())
		}
		secs := time.Since(start).Seconds()
		res.SeedLiteralSeconds, res.SeedLiteralSlowestTickS = &secs, &slowest
		if res.SlowestTickS > 0 {
			x := slowest / res.SlowestTickS
			res.SlowestTickSpeedup = &x
		}
	}
	res.LoadAverage = LoadAverage()
	return res, nil
}

func players(ts []matcher.Ticket) int {
	n := 0
	for _, t := range ts {
		n += t.Members
	}
	return n
}

// sameRooms reports whether two ticks formed the same rooms (ticket IDs, in
// order).
func sameRooms(a, b []matcher.Room) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i].Tickets) != len(b[i].Tickets) {
			return false
		}
		for j := range a[i].Tickets {
			if a[i].Tickets[j].ID != b[i].Tickets[j].ID {
				return false
			}
		}
	}
	return true
}

// SteadyOptions configures Steady.
type SteadyOptions struct {
	ArrivalsPerSecond int
	Seconds           int // simulated duration; one tick at the end of each second
	Seed              uint64
	Config            matcher.Config
	// SeedMax: the seed's rule runs on the same arrivals when the total
	// number of arrivals is <= SeedMax.
	SeedMax int
}

// SteadyResult is the steady workload's report.
type SteadyResult struct {
	Mode              string  `json:"mode"` // "steady"
	ArrivalsPerSecond int     `json:"arrivals_per_s"`
	DurationS         int     `json:"duration_s"`
	Seed              uint64  `json:"seed"`
	RoomSize          int     `json:"room_size"`
	WindowBase        float64 `json:"window_base"`
	WindowPerSecond   float64 `json:"window_per_second"`
	Tighten           bool    `json:"tighten"`

	Tickets      int     `json:"tickets"` // arrivals in all
	Rooms        int     `json:"rooms"`
	Left         int     `json:"left"` // still waiting at the end
	MaxWaiting   int     `json:"max_waiting"`
	Seconds      float64 `json:"seconds"`
	SlowestTickS float64 `json:"slowest_tick_s"`
	MeanTickS    float64 `json:"mean_tick_s"`
	// CPU seconds per tick, as in BatchResult.
	SlowestTickCPUS float64 `json:"slowest_tick_cpu_s"`
	MeanTickCPUS    float64 `json:"mean_tick_cpu_s"`
	Waits
	MeanSpread float64 `json:"mean_spread"`
	MaxSpread  int     `json:"max_spread"`

	// The seed's rule on the same arrivals and ticks (nil when skipped).
	SeedRooms      *int     `json:"seed_rooms"`
	SeedLeft       *int     `json:"seed_left"`
	SeedMeanSpread *float64 `json:"seed_mean_spread"`
	SeedMaxSpread  *int     `json:"seed_max_spread"`
	SeedWaits      *Waits   `json:"seed_waits"`

	CPUs        int     `json:"cpus"`
	GoVersion   string  `json:"go_version"`
	LoadAverage float64 `json:"load_average"` // as in BatchResult
}

// Waits are simulated seconds from arrival to room, over matched tickets.
type Waits struct {
	P50  float64 `json:"wait_p50_s"`
	P95  float64 `json:"wait_p95_s"`
	P99  float64 `json:"wait_p99_s"`
	Max  float64 `json:"wait_max_s"`
	Mean float64 `json:"wait_mean_s"`
}

// waitsOf summarises waits (sorting them).
func waitsOf(w []float64) Waits {
	if len(w) == 0 {
		return Waits{}
	}
	slices.Sort(w)
	q := func(p float64) float64 { return w[min(len(w)-1, int(math.Ceil(p*float64(len(w))))-1)] }
	sum := 0.0
	for _, x := range w {
		sum += x
	}
	return Waits{P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: w[len(w)-1], Mean: sum / float64(len(w))}
}

// SteadyArrivals is the steady workload's arrivals: out[s] arrive during
// second s (at s + a random fraction) and first meet a tick at s+1.
func SteadyArrivals(rate, seconds int, seed uint64) [][]matcher.Ticket {
	rng := newRand(seed)
	out := make([][]matcher.Ticket, seconds)
	id := 0
	for s := range out {
		out[s] = make([]matcher.Ticket, rate)
		for i := range out[s] {
			out[s][i] = matcher.Ticket{ID: strconv.Itoa(id), Rating: Rating(rng), Members: 1, Enqueued: at(float64(s) + rng.Float64())}
			id++
		}
		// The seed's list and the pool keep arrival order for ties.
		slices.SortStableFunc(out[s], func(a, b matcher.Ticket) int { return a.Enqueued.Compare(b.Enqueued) })
	}
	return out
}

// Steady runs the steady workload.
func Steady(o SteadyOptions) (SteadyResult, error) {
	if err := checkConfig(o.Config); err != nil {
		return SteadyResult{}, err
	}
	if o.ArrivalsPerSecond < 0 || o.Seconds <= 0 {
		return SteadyResult{}, errors.New("bench match: --arrivals must be >= 0 and --duration at least 1s")
	}
	cfg := o.Config
	arrivals := SteadyArrivals(o.ArrivalsPerSecond, o.Seconds, o.Seed)
	res := SteadyResult{
		Mode: "steady", ArrivalsPerSecond: o.ArrivalsPerSecond, DurationS: o.Seconds, Seed: o.Seed,
		RoomSize: cfg.RoomSize, WindowBase: cfg.WindowBase, WindowPerSecond: cfg.WindowPerSecond, Tighten: cfg.Tighten,
		Tickets: o.ArrivalsPerSecond * o.Seconds, CPUs: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}

	runtime.GC()
	var t tally
	var waits []float64
	start := time.Now()
	p := matcher.NewPool(cfg)
	for s, batch := range arrivals {
		for _, tk := range batch {
			if err := p.Add(tk); err != nil {
				return res, fmt.Errorf("bench match: %w", err)
			}
		}
		res.MaxWaiting = max(res.MaxWaiting, p.Len())
		now := at(float64(s + 1))
		c0, t0 := cpuTime(), time.Now()
		rooms := p.Tick(now)
		d, cpu := time.Since(t0).Seconds(), (cpuTime() - c0).Seconds()
		res.SlowestTickS = max(res.SlowestTickS, d)
		res.MeanTickS += d / float64(len(arrivals))
		res.SlowestTickCPUS = max(res.SlowestTickCPUS, cpu)
		res.MeanTickCPUS += cpu / float64(len(arrivals))
		t.add(rooms)
		waits = collectWaits(waits, rooms, now)
	}
	res.Seconds = time.Since(start).Seconds()
	res.Rooms, res.Left, res.MeanSpread, res.MaxSpread = t.rooms, p.Len(), t.mean(), t.maxSpread
	res.Waits = waitsOf(waits)

	if res.Tickets <= o.SeedMax {
		var st tally
		var sw []float64
		var waiting []matcher.Ticket
		for s, batch := range arrivals {
			waiting = append(waiting, batch...)
			now := at(float64(s + 1))
			var rooms []matcher.Room
			rooms, waiting = matcher.SeedTick(cfg, waiting, now)
			st.add(rooms)
			sw = collectWaits(sw, rooms, now)
		}
		mean, left, w := st.mean(), len(waiting), waitsOf(sw)
		res.SeedRooms, res.SeedLeft, res.SeedMeanSpread, res.SeedMaxSpread, res.SeedWaits = &st.rooms, &left, &mean, &st.maxSpread, &w
	}
	res.LoadAverage = LoadAverage()
	return res, nil
}

func collectWaits(w []float64, rooms []matcher.Room, now time.Time) []float64 {
	for _, r := range rooms {
		for _, t := range r.Tickets {
			w = append(w, now.Sub(t.Enqueued).Seconds())
		}
	}
	return w
}

// loadAverage reads the 1-minute load average from /proc/loadavg (Linux);
// 0 elsewhere.
// LoadAverage is the machine's 1-minute load average (0 when unknown).
func LoadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b) + " 0")[0], 64)
	return f
}
