package fleet

import (
	"context"
	"time"

	"github.com/arena-game/arena/hostctl"
)

// superviseEvery is the period of the supervisor's checks.
const superviseEvery = 100 * time.Millisecond

// Run supervises the fleet until ctx ends: host leases (a host whose
// heartbeats stop for the lease takes no new work; one whose stream closed
// and is not back within the grace, or that stays lost past the expiry,
// leaves the table with its processes), the minimum processes of each
// kind, and idle processes above the minimum (drained). The processes
// themselves belong to the hosts: when Run returns they keep running.
func (f *Fleet) Run(ctx context.Context) error {
	t := time.NewTicker(superviseEvery)
	defer t.Stop()
	slow := time.NewTicker(time.Second)
	defer slow.Stop()
	backoff := map[string]time.Time{}
	for {
		select {
		case <-ctx.Done():
			f.mu.Lock()
			f.stopped = true
			f.mu.Unlock()
			f.wg.Wait()
			return nil
		case <-t.C:
			f.checkHosts(time.Now())
		case <-slow.C:
			f.ensureMinimum(ctx, backoff)
			f.drainIdle()
		}
	}
}

// checkHosts applies leases and graces at now.
func (f *Fleet) checkHosts(now time.Time) {
	type change struct {
		name  string
		state string
		why   string
	}
	var changes []change
	var removed []*Proc
	failed := map[*Proc][]string{}
	var closeSess []*session
	f.mu.Lock()
	for name, h := range f.hosts {
		switch {
		case h.sess == nil && !h.closedAt.IsZero() && now.Sub(h.closedAt) > f.cfg.Grace,
			h.state == hostctl.HostLost && now.Sub(h.lastSeen) > f.cfg.HostExpiry:
			why := "stream closed and not back within the grace"
			if h.sess != nil {
				why = "lost past the expiry"
				closeSess = append(closeSess, h.sess)
			}
			for _, p := range f.procs {
				if p.Host == name {
					failed[p] = roomsOf(p)
					removed = append(removed, p)
				}
			}
			delete(f.hosts, name)
			f.version++
			changes = append(changes, change{name, hostctl.HostGone.String(), why})
		case h.sess != nil && h.state != hostctl.HostLost && now.Sub(h.lastSeen) > f.cfg.Lease:
			h.state = hostctl.HostLost
			h.since = now
			f.indexHostLocked(h)
			f.version++
			changes = append(changes, change{name, hostctl.HostLost.String(), "missed heartbeats past the lease"})
		}
	}
	for _, p := range removed {
		f.removeLocked(p)
	}
	f.mu.Unlock()
	for _, s := range closeSess {
		s.cancel(errHostExpired)
	}
	for _, c := range changes {
		f.log.Warn("host "+c.state, "host", c.name, "why", c.why)
		f.publish(Event{Type: "host", Host: c.name, State: c.state, Reason: c.why})
	}
	for _, p := range removed {
		f.reportExit(p, "host gone", failed[p])
	}
}

// errHostExpired ends the session of a host lost past the expiry.
var errHostExpired = hostErr("host lost past its expiry")

type hostErr string

func (e hostErr) Error() string { return string(e) }

// ensureMinimum spawns processes until every kind has its minimum across
// the fleet, one after the other. A kind whose spawn fails waits 5 s.
func (f *Fleet) ensureMinimum(ctx context.Context, retryAt map[string]time.Time) {
	for kind, min := range f.cfg.Min {
		for f.spawnIfBelow(ctx, kind, min, retryAt) {
		}
	}
}

// spawnIfBelow spawns one process of kind when the fleet runs fewer than
// min of them (and some host takes the kind), and reports whether it did.
func (f *Fleet) spawnIfBelow(ctx context.Context, kind string, min int, retryAt map[string]time.Time) bool {
	if time.Now().Before(retryAt[kind]) || ctx.Err() != nil {
		return false
	}
	f.mu.Lock()
	n := 0
	for _, p := range f.byKind[kind] {
		if p.State == hostctl.Ready || p.State == hostctl.Starting {
			n++
		}
	}
	hosts := 0
	for _, h := range f.hosts {
		if _, ok := h.kinds[kind]; ok && f.availableLocked(h) {
			hosts++
		}
	}
	stopped := f.stopped
	f.mu.Unlock()
	if stopped || n >= min || hosts == 0 {
		return false
	}
	if _, err := f.spawnShared(ctx, kind, nil); err != nil {
		retryAt[kind] = time.Now().Add(5 * time.Second)
		f.log.Warn("fleet cannot keep its minimum; retrying", "kind", kind, "min", min, "err", err)
		return false
	}
	return true
}

// drainIdle drains processes above the minimum of their kind that had no
// load for IdleTimeout.
func (f *Fleet) drainIdle() {
	if f.cfg.IdleTimeout <= 0 {
		return
	}
	now := time.Now()
	var victims []Key
	f.mu.Lock()
	for kind, list := range f.byKind {
		ready := 0
		for _, p := range list {
			if p.State == hostctl.Ready {
				ready++
			}
		}
		for _, p := range list {
			if ready <= f.cfg.Min[kind] {
				break
			}
			if h := f.hosts[p.Host]; h == nil || h.kinds[kind].Fixed {
				continue
			}
			if p.State == hostctl.Ready && p.Load == 0 && p.Pending == 0 && now.Sub(p.LastBusy) >= f.cfg.IdleTimeout {
				ready--
				victims = append(victims, p.Key())
			}
		}
	}
	f.mu.Unlock()
	for _, k := range victims {
		f.log.Info("fleet draining idle process", "host", k.Host, "port", k.Port)
		_ = f.Drain(k, 5*time.Second)
	}
}
