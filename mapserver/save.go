package mapserver

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"time"

	"github.com/arena-game/arena/internal/mailbox"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/internal/wsconn"
)

// saveJob is a periodic snapshot of one player's position to save.
type saveJob struct {
	s    *session
	x, y float64
	seq  uint64
}

// saveBatchSize is how many players one periodic save batch reads with
// one GetMulti.
const saveBatchSize = 64

// saveWorker runs periodic save batches until the server stops.
func (s *Server) saveWorker() {
	defer s.bg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case jobs := <-s.saveq:
			s.saveBatch(jobs)
		}
	}
}

// submitSaves queues a batch of periodic saves without blocking; a full
// queue skips this round for the batch (the lease outlives two skipped
// rounds).
func (s *Server) submitSaves(jobs []saveJob) {
	select {
	case s.saveq <- jobs:
	default:
		s.met.saves.WithLabelValues("skipped").Add(float64(len(jobs)))
	}
}

// saveBatch reads the batch's records with one GetMulti, then writes each
// snapshot with compare-and-swap and renews its lease. A record that
// moved on (ErrOwnershipLost) kicks its player.
func (s *Server) saveBatch(jobs []saveJob) {
	if s.crashed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	keys := make([]string, len(jobs))
	for i, j := range jobs {
		keys[i] = StateKey(j.s.claims.Subject)
	}
	got, err := s.st.GetMulti(ctx, keys)
	if err != nil {
		got = nil // fall back to one Get per player
	}
	for i, j := range jobs {
		s.save(ctx, j, got[keys[i]]) // nil (missing or no batch read): read it again
	}
	s.met.saveSeconds.Observe(time.Since(start).Seconds() / float64(len(jobs)))
}

func (s *Server) save(ctx context.Context, j saveJob, pre *store.Item) {
	ss := j.s
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
	if ss.done || j.seq <= ss.lastSeq || s.crashed.Load() {
		return
	}
	lease := time.Now().Add(s.cfg.lease())
	rec, err := updateOwnedFrom(ctx, s.st, ss.rec, s.self, pre, func(r *State) {
		r.X, r.Y = j.x, j.y
		r.Lease = lease.UnixMilli()
	})
	switch {
	case err == nil:
		ss.rec, ss.lastSeq = rec, j.seq
		ss.leaseUntil.Store(lease.UnixMilli())
		s.met.saves.WithLabelValues("ok").Inc()
	case errors.Is(err, ErrOwnershipLost):
		ss.done = true
		s.met.saves.WithLabelValues("lost").Inc()
		s.kick(ss, CodeOwnershipLost, "your state was claimed by another map server")
	default:
		s.met.saves.WithLabelValues("error").Inc()
		s.log.Warn("save player state", "player", ss.claims.Subject, "err", err)
	}
}

// publicAddr is addr with its host replaced by the public-host option.
func (s *Server) publicAddr(addr string) string {
	if s.cfg.PublicHost == "" {
		return addr
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(s.cfg.PublicHost, p)
}

// kick sends an error and closes the connection; the leave that follows
// removes the player from its instance without a final save.
func (s *Server) kick(ss *session, code, msg string) {
	s.met.kicks.WithLabelValues(code).Inc()
	ss.sendError(code, msg)
	ss.conn.Close(wsconn.ClosePolicy, code)
}

// finalSave saves the player's last position and releases the record
// (status offline), so its next Enter resumes at once. It runs when the
// player leaves the map (disconnect, shutdown) and is a no-op after a
// handoff or a lost record.
func (s *Server) finalSave(ss *session, x, y float64) {
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
	if ss.done || s.crashed.Load() {
		return
	}
	ss.done = true
	s.finalSem <- struct{}{} // bound concurrent saves (and memcached connections)
	defer func() { <-s.finalSem }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rec, err := updateOwned(ctx, s.st, ss.rec, s.self, func(r *State) {
		r.X, r.Y = x, y
		r.Status = StatusOffline
		r.Owner, r.OwnerID, r.Lease = "", "", 0
	})
	if err != nil {
		s.met.saves.WithLabelValues("error").Inc()
		if !errors.Is(err, ErrOwnershipLost) {
			s.log.Warn("final save of player state", "player", ss.claims.Subject, "err", err)
		}
		return
	}
	ss.rec = rec
	s.met.saves.WithLabelValues("ok").Inc()
}

// handoff moves the player to map to (arriving at arr) on the server the
// Locator names: it writes the record in transit to that server with
// compare-and-swap, mints a ticket for the new version and sends the
// switch answer, then closes the connection. It reports to the instance
// whether the player left, through result. For a drain (same map), a Locator answer of
// this very server falls back to a final save and a "draining" close.
func (s *Server) handoff(ss *session, from, to string, arr Point, drain bool, result *mailbox.Reservation[any]) {
	ok := s.doHandoff(ss, from, to, arr, drain)
	_ = result.Post(switchDone{s: ss, ok: ok}) // ErrClosed: the instance has stopped
}

func (s *Server) doHandoff(ss *session, from, to string, arr Point, drain bool) bool {
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	// The record is read while the dispatcher is asked where the map
	// lives: the two round trips overlap instead of adding up. A read that
	// a concurrent save makes stale costs one more read in updateOwnedFrom,
	// never a wrong write (the write is a compare-and-swap).
	pre := make(chan *store.Item, 1)
	go func() {
		it, err := s.st.Get(ctx, StateKey(ss.claims.Subject))
		if err != nil {
			it = nil // updateOwnedFrom reads again and reports the error
		}
		pre <- it
	}()
	addr, err := s.loc.Locate(ctx, to)
	if err == nil && drain && addr == s.self.Addr {
		err = errors.New("the dispatcher placed the map on this draining server")
	}
	if err != nil {
		if drain {
			s.finalSave(ss, arr.X, arr.Y)
			s.kick(ss, CodeDraining, "map server draining; enter again")
			s.met.handoffs.WithLabelValues("drain_saved").Inc()
			return true
		}
		s.met.handoffs.WithLabelValues("no_server").Inc()
		s.log.Warn("switch: locate map", "map", to, "err", err)
		ss.sendError(CodeUnavailable, "no map server for "+to+" right now; try again")
		return false
	}
	ss.storeMu.Lock()
	defer ss.storeMu.Unlock()
	if ss.done || s.crashed.Load() {
		return true
	}
	rec, err := updateOwnedFrom(ctx, s.st, ss.rec, s.self, <-pre, func(r *State) {
		r.Map, r.X, r.Y = to, arr.X, arr.Y
		r.Status = StatusTransit
		r.Owner, r.OwnerID, r.Lease = "", "", 0
		r.Target, r.From = addr, from
	})
	if errors.Is(err, ErrOwnershipLost) {
		ss.done = true
		s.met.handoffs.WithLabelValues("lost").Inc()
		s.kick(ss, CodeOwnershipLost, "your state was claimed by another map server")
		return true
	}
	if err != nil {
		s.met.handoffs.WithLabelValues("error").Inc()
		s.log.Warn("switch: write state", "player", ss.claims.Subject, "err", err)
		ss.sendError(CodeUnavailable, "could not save your state for the switch; try again")
		return false
	}
	ss.done = true
	ss.rec = rec
	ticket, err := mintTicket(s.signer, rec, ss.claims)
	if err != nil {
		// The record is in transit; the player's next Enter re-points it.
		s.log.Error("switch: mint ticket", "err", err)
		s.kick(ss, CodeUnavailable, "could not mint a ticket; enter again")
		return true
	}
	// Written from here rather than by the connection's writer goroutine:
	// one goroutine hop less on the handoff's critical path.
	answer, _ := json.Marshal(SwitchAnswer{Type: "switch", Map: to, Addr: WebSocketURL(s.publicAddr(addr)), Ticket: ticket})
	_ = ss.conn.SendNow(answer)
	ss.conn.Close(wsconn.CloseNormal, "switched")
	s.met.handoffs.WithLabelValues("ok").Inc()
	s.met.handoffSeconds.Observe(time.Since(start).Seconds())
	return true
}
