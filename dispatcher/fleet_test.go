package dispatcher

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/arena-game/arena/fleet"
	"github.com/arena-game/arena/fleet/fleettest"
	"github.com/arena-game/arena/hostctl"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/proc"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newTestFleet starts a fleet with one host on the dispatcher's machine
// (fake processes, fight ports from base), MAXNUM maxnum and min fight
// processes kept running, and waits for them.
func newTestFleet(t testing.TB, maxnum, min int) (*fleet.Fleet, int) {
	t.Helper()
	n := &fleettest.Network{}
	d := fleettest.NewDispatcher(t, n, func(c *fleet.Config) {
		c.MaxNum = maxnum
		c.Min = map[string]int{proc.KindFight: min}
		// The production lease: a loaded test machine must not make the
		// host look lost (these tests are not about leases).
		c.Lease, c.Grace = 3*time.Second, 1500*time.Millisecond
	})
	kinds := fleettest.Kinds(t, max(min, 20))
	fleettest.NewHost(t, n, "local", "10.0.0.1", kinds, nil)
	fleettest.WaitHosts(t, d.F, 1)
	waitfor.Cond(t, "the minimum fight processes ready", func() bool {
		ready := 0
		for _, p := range d.F.Snapshot() {
			if p.Kind == proc.KindFight && p.State == hostctl.Ready {
				ready++
			}
		}
		return ready >= min
	})
	return d.F, kinds[proc.KindFight].FirstPort
}
