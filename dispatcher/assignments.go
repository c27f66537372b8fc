package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchpb"
)

// assignment is one event of a ticket: a match (or a director's
// connection), or its expiry.
type assignment struct {
	cursor  uint64 // place in the backend-wide journal (0: a player's ticket)
	backend bool
	event   string // "match" or "expired"
	msg     matchmaking.MatchMsg
}

// assignmentHub fans assignments out to gRPC stream subscribers (the
// backend-wide stream, WatchAssignments). A subscriber that falls 256
// assignments behind is dropped (it resumes from its cursor). Journaled
// assignments go out in cursor order, whatever order their writes end in
// (publishAt), so a consumer resuming after the last cursor it saw misses
// none.
type assignmentHub struct {
	mu   sync.Mutex
	subs map[chan assignment]struct{}
	// next is the journal cursor published next: every lower one was
	// written (or failed) and published. pending holds the written ones
	// waiting for a lower cursor's write.
	next    uint64
	pending map[uint64]assignment
}

// newAssignmentHub returns a hub; New sets its next cursor (the
// journal's) once the journal is open, before any assignment.
func newAssignmentHub() *assignmentHub {
	return &assignmentHub{subs: map[chan assignment]struct{}{}, next: 1, pending: map[uint64]assignment{}}
}

func (h *assignmentHub) subscribe() (chan assignment, func()) {
	ch := make(chan assignment, 256)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

// publish sends a (not journaled: a player's ticket) to the subscribers.
func (h *assignmentHub) publish(a assignment) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.send(a)
}

// publishAt sends a, the assignment of journal cursor seq (a.cursor is 0
// when its write failed), once every lower cursor was published. Every
// cursor the journal reserves is published exactly once.
func (h *assignmentHub) publishAt(seq uint64, a assignment) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pending[seq] = a
	for {
		p, ok := h.pending[h.next]
		if !ok {
			return
		}
		delete(h.pending, h.next)
		h.next++
		h.send(p)
	}
}

// published is the journal cursor published next: the records below it
// are readable, those from it on reach a subscriber through its channel.
func (h *assignmentHub) published() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.next
}

func (h *assignmentHub) send(a assignment) {
	for ch := range h.subs {
		select {
		case ch <- a:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// recordAssignments records a batch of matched players (OnMatch): it
// keeps each player's match readable (GET /v1/tickets/{uuid}, GetTicket),
// journals a backend's (the resumable stream) and forgets its stored
// ticket, and tells the stream subscribers. Each of those steps is one
// pipelined write of the whole batch (store.SetMulti, DeleteMulti), not a
// round trip per player; the batch's journal cursors are taken first, in
// batch order, and the subscribers hear of them in cursor order (across
// batches recorded at once too).
func (d *Dispatcher) recordAssignments(batch []matchmaking.Matched) {
	d.recordEvents(batch, "match")
}

// recordExpiry tells the streams that a ticket lapsed unmatched.
func (d *Dispatcher) recordExpiry(e matchmaking.Enqueue, x matchmaking.Expired) {
	m := matchmaking.MatchMsg{Type: "expired", UUID: x.UUID, Channel: x.Channel, Profile: x.Profile}
	d.recordEvents([]matchmaking.Matched{{Msg: m, Backend: e.Source == matchmaking.SourceBackend}}, "expired")
}

// recordTimeout bounds recording a batch: a second per 10,000 players,
// at least 2 s.
func recordTimeout(n int) time.Duration { return 2*time.Second + time.Duration(n)*100*time.Microsecond }

func (d *Dispatcher) recordEvents(batch []matchmaking.Matched, event string) {
	ctx, cancel := context.WithTimeout(context.Background(), recordTimeout(len(batch)))
	defer cancel()
	if event == "match" {
		items := make([]*store.Item, len(batch))
		for i, m := range batch {
			b, _ := json.Marshal(m.Msg)
			items[i] = &store.Item{Key: assignmentKey(m.Msg.UUID), Value: b, TTL: AssignmentTTL}
		}
		for i, err := range store.SetMulti(ctx, d.store, items) {
			if err != nil {
				d.log.Warn("assignment not saved", "uuid", batch[i].Msg.UUID, "err", err)
			}
		}
	}
	var backends []int // batch's backend players, in batch order
	for i, m := range batch {
		if m.Backend {
			backends = append(backends, i)
		} else {
			d.assignments.publish(assignment{event: event, msg: m.Msg})
		}
	}
	if len(backends) == 0 {
		return
	}
	uuids := make([]string, len(backends))
	vals := make([][]byte, len(backends))
	for n, i := range backends {
		uuids[n] = batch[i].Msg.UUID
		vals[n], _ = json.Marshal(storedAssignment{Event: event, Msg: batch[i].Msg})
	}
	d.backendTickets.ForgetMulti(ctx, uuids)
	first := d.assignLog.Reserve(len(backends))
	errs := d.assignLog.PutMulti(ctx, first, vals)
	for n, i := range backends {
		seq := first + uint64(n)
		a := assignment{cursor: seq, backend: true, event: event, msg: batch[i].Msg}
		if errs != nil && errs[n] != nil {
			d.log.Warn("assignment not journaled", "uuid", a.msg.UUID, "err", errs[n])
			a.cursor = 0
		}
		d.assignments.publishAt(seq, a)
	}
}

// storedAssignment is a journal record of the backend-wide stream.
type storedAssignment struct {
	Event string               `json:"event"`
	Msg   matchmaking.MatchMsg `json:"msg"`
}

func (a assignment) pb() *matchpb.Assignment {
	m := a.msg
	out := &matchpb.Assignment{Uuid: m.UUID, ChannelName: m.Channel, Room: m.Room, Fight: m.Fight, Ticket: m.Ticket,
		Cursor: a.cursor, Profile: m.Profile, Event: a.event, Connection: m.Connection}
	for _, p := range m.Players {
		out.Players = append(out.Players, &matchpb.MatchedPlayer{Uuid: p.UUID, Username: p.Username, Photo: p.Photo, Score: int32(p.Score)})
	}
	return out
}

// Assignments implements matchpb.MatchServer: the backend-wide stream,
// resumable after a cursor for the journal's hour.
func (s *matchService) Assignments(r *matchpb.AssignmentsRequest, stream grpc.ServerStreamingServer[matchpb.Assignment]) error {
	if err := s.authorise(stream.Context()); err != nil {
		return err
	}
	err := s.d.followAssignments(stream.Context(), r.GetAfter(), func(a assignment) error { return stream.Send(a.pb()) })
	switch {
	case errors.Is(err, errCursorTooOld):
		return status.Error(codes.OutOfRange, err.Error())
	case errors.Is(err, errFellBehind):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, errJournal):
		return status.Error(codes.Unavailable, err.Error())
	}
	return err
}

var (
	errCursorTooOld = errors.New("cursor older than the hour kept; read GET /v1/tickets/{uuid}")
	errFellBehind   = errors.New("assignment stream fell behind; reconnect with your last cursor")
	errJournal      = errors.New("assignment journal unavailable; retry with the same cursor")
)

// followAssignments sends the backend assignments after cursor after (0:
// from now) from the journal, then the live ones, each once, until ctx
// ends or send fails.
func (d *Dispatcher) followAssignments(ctx context.Context, after uint64, send func(assignment) error) error {
	// Subscribe first, then replay: nothing falls between the two.
	ch, cancel := d.assignments.subscribe()
	defer cancel()
	// The journal is read up to the cursors published: a record still
	// being written comes through ch, in order.
	last := after
	if after > 0 {
		if after+1 < d.assignLog.Low() {
			return fmt.Errorf("follow assignments after %d (oldest kept %d): %w", after, d.assignLog.Low(), errCursorTooOld)
		}
		err := d.assignLog.Range(ctx, after+1, d.assignments.published(), func(seq uint64, v []byte) error {
			var sa storedAssignment
			if json.Unmarshal(v, &sa) != nil {
				return nil
			}
			last = seq
			return send(assignment{cursor: seq, backend: true, event: sa.Event, msg: sa.Msg})
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow assignments: %w: %v", errJournal, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case a, ok := <-ch:
			if !ok {
				return errFellBehind
			}
			if !a.backend || (a.cursor != 0 && a.cursor <= last) {
				continue
			}
			if err := send(a); err != nil {
				return err
			}
		}
	}
}

// handleAssignments serves GET /v1/assignments?after=CURSOR (backend
// token): the backend-wide stream as server-sent events, one event
// "assignment" per assignment with its cursor as the event id, for
// consumers without gRPC (examples/django-channels).
func (d *Dispatcher) handleAssignments(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "no_streaming", "streaming unsupported")
		return
	}
	var after uint64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_cursor", "after must be a cursor (a number)")
			return
		}
		after = n
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" && after == 0 {
		after, _ = strconv.ParseUint(v, 10, 64)
	}
	if after > 0 && after+1 < d.assignLog.Low() {
		writeError(w, http.StatusGone, "cursor_too_old", errCursorTooOld.Error())
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	_ = d.followAssignments(r.Context(), after, func(a assignment) error {
		b, err := json.Marshal(assignmentJSON{Cursor: a.cursor, Event: a.event, MatchMsg: a.msg})
		if err != nil {
			return nil
		}
		if _, err := fmt.Fprintf(w, "id: %d\nevent: assignment\ndata: %s\n\n", a.cursor, b); err != nil {
			return err
		}
		fl.Flush()
		return nil
	})
}

// assignmentJSON is one server-sent assignment.
type assignmentJSON struct {
	Cursor uint64 `json:"cursor"`
	Event  string `json:"event"`
	matchmaking.MatchMsg
}

// WatchAssignments implements matchpb.MatchServer: one ticket's
// assignment now (if it has one) and its later ones, until the caller
// ends the stream.
func (s *matchService) WatchAssignments(r *matchpb.TicketID, stream grpc.ServerStreamingServer[matchpb.Assignment]) error {
	if err := s.authorise(stream.Context()); err != nil {
		return err
	}
	id := r.GetUuid()
	if !ids.Valid(id) {
		return status.Error(codes.InvalidArgument, "uuid must be "+ids.Rule)
	}
	ch, cancel := s.d.assignments.subscribe()
	defer cancel()
	if it, err := s.d.store.Get(stream.Context(), assignmentKey(id)); err == nil {
		var m matchmaking.MatchMsg
		if json.Unmarshal(it.Value, &m) == nil {
			if err := stream.Send(assignment{event: "match", msg: m}.pb()); err != nil {
				return err
			}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return status.Error(codes.Unavailable, "store unavailable")
	}
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case a, ok := <-ch:
			if !ok {
				return status.Error(codes.ResourceExhausted, "watch fell behind; watch again")
			}
			if a.msg.UUID != id {
				continue
			}
			if err := stream.Send(a.pb()); err != nil {
				return err
			}
		}
	}
}

// CreateTicket implements matchpb.MatchServer.
func (s *matchService) CreateTicket(ctx context.Context, t *matchpb.Ticket) (*matchpb.TicketStatus, error) {
	if err := s.authorise(ctx); err != nil {
		return nil, err
	}
	req := TicketRequest{Score: int(t.GetScore()), UUID: t.GetUuid(), Username: t.GetUsername(), Photo: t.GetPhoto(),
		ChannelName: t.GetChannelName(), Profile: t.GetProfile()}
	if sf := t.GetSearchFields(); sf != nil {
		req.Search = matchmaking.SearchFields{Doubles: sf.GetDoubles(), Strings: sf.GetStrings(), Tags: sf.GetTags()}
	}
	st, err := s.d.addTicket(ctx, req)
	if err != nil {
		if _, code, gc := ticketError(err); code != "unavailable" {
			return nil, status.Error(gc, err.Error())
		}
		return nil, status.Error(codes.Unavailable, "could not queue; try again")
	}
	return &matchpb.TicketStatus{Uuid: req.UUID, State: st.State, Profile: st.Profile, ExpiresUnix: st.Expires.Unix()}, nil
}

// GetTicket implements matchpb.MatchServer.
func (s *matchService) GetTicket(ctx context.Context, r *matchpb.TicketID) (*matchpb.TicketStatus, error) {
	if err := s.authorise(ctx); err != nil {
		return nil, err
	}
	ts, err := s.d.ticketStatus(ctx, r.GetUuid())
	switch {
	case errors.Is(err, errBadTicket):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	case err != nil:
		return nil, status.Error(codes.Unavailable, "store unavailable")
	case ts.Queue.State == matchmaking.StateNone && ts.Assignment == nil:
		return nil, status.Error(codes.NotFound, "no such ticket")
	}
	out := &matchpb.TicketStatus{Uuid: ts.UUID, State: ts.Queue.State, Profile: ts.Queue.Profile, ExpiresUnix: ts.Queue.Expires.Unix()}
	if ts.Assignment != nil {
		var m matchmaking.MatchMsg
		if json.Unmarshal(ts.Assignment, &m) == nil {
			out.Assignment = assignment{event: "match", msg: m}.pb()
		}
	}
	return out, nil
}

// DeleteTicket implements matchpb.MatchServer.
func (s *matchService) DeleteTicket(ctx context.Context, r *matchpb.TicketID) (*matchpb.TicketStatus, error) {
	if err := s.authorise(ctx); err != nil {
		return nil, err
	}
	if err := s.d.cancelTicket(ctx, r.GetUuid()); err != nil {
		if errors.Is(err, matchmaking.ErrNotQueued) {
			return nil, status.Error(codes.NotFound, err.Error())
		}
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	}
	return &matchpb.TicketStatus{Uuid: r.GetUuid(), State: matchmaking.StateNone}, nil
}
