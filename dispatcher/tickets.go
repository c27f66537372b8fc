package dispatcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/playerdb"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/ids"
	"github.com/arena-game/arena/internal/store"
	"github.com/arena-game/arena/proto/matchpb"
)

// MaxScore bounds a vouched score.
const MaxScore = 100_000

// AssignmentTTL is how long a match stays readable at GET /v1/tickets/{uuid}.
const AssignmentTTL = time.Hour

func assignmentKey(uuid string) string { return "assign:" + uuid }

// TicketRequest is the trusted intake's request (the seed's add_player).
type TicketRequest struct {
	Score       int    `json:"score"`
	UUID        string `json:"uuid"`
	Username    string `json:"username"`
	Photo       string `json:"photo"`
	ChannelName string `json:"channel_name"`
	// Profile names the profile ("" = default); Mode is its old name.
	Profile string `json:"profile"`
	Mode    string `json:"mode"`
	// Search are the ticket's search fields (any the profile filters on:
	// a backend may set every field, the player's rating aside).
	Search matchmaking.SearchFields `json:"search_fields"`
	// seedNames allows usernames up to SeedUsernameMax (the Thrift intake).
	seedNames bool
}

// SeedUsernameMax is the longest username the Thrift intake accepts: the
// seed's Django app allows 150 characters.
const SeedUsernameMax = 150

// errBadTicket wraps validation failures of TicketRequest.
var errBadTicket = errors.New("bad ticket")

// validate checks a TicketRequest and normalises it.
func (t *TicketRequest) validate() error {
	if !ids.Valid(t.UUID) {
		return fmt.Errorf("%w: uuid must be "+ids.Rule, errBadTicket)
	}
	limit := 32
	if t.seedNames {
		limit = SeedUsernameMax
	}
	name, ok := playerdb.CleanNameMax(t.Username, limit)
	if !ok {
		return fmt.Errorf("%w: username must be 1 to %d printable characters", errBadTicket, limit)
	}
	t.Username = name
	if !ValidPhoto(t.Photo) {
		return fmt.Errorf("%w: photo must be empty or an http(s) URL", errBadTicket)
	}
	if t.Score < 0 || t.Score > MaxScore {
		return fmt.Errorf("%w: score must be 0..%d", errBadTicket, MaxScore)
	}
	if len(t.ChannelName) > 128 || strings.IndexFunc(t.ChannelName, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: channel_name must be up to 128 printable characters", errBadTicket)
	}
	if t.Profile == "" {
		t.Profile = t.Mode
	}
	return nil
}

// addTicket enqueues a backend's player with the score it vouches for.
func (d *Dispatcher) addTicket(ctx context.Context, t TicketRequest) (matchmaking.QueueStatus, error) {
	if err := t.validate(); err != nil {
		return matchmaking.QueueStatus{}, err
	}
	// Nothing changes for a ticket the matchmaker would refuse.
	if err := t.Search.Validate(); err != nil {
		return matchmaking.QueueStatus{}, fmt.Errorf("add ticket: %w", err)
	}
	if _, err := d.mm.Profile(ctx, t.Profile); err != nil {
		return matchmaking.QueueStatus{}, fmt.Errorf("add ticket: %w", err)
	}
	// The player's record learns the vouched score and profile, so fights
	// rate from it.
	// A record's display name is at most playerdb.MaxNameRunes: a longer
	// name (the Thrift intake allows the seed's 150) is cut there; the
	// ticket and the room carry it whole.
	if err := d.players.SetRating(ctx, playerdb.NewPlayer{ID: t.UUID, Name: cutRunes(t.Username, playerdb.MaxNameRunes), Photo: t.Photo}, t.Profile, t.Score); err != nil {
		return matchmaking.QueueStatus{}, fmt.Errorf("add ticket: %w", err)
	}
	e := matchmaking.Enqueue{
		Player:  matchmaking.Player{UUID: t.UUID, Username: t.Username, Photo: t.Photo, Score: t.Score},
		Profile: t.Profile, Search: t.Search, Source: matchmaking.SourceBackend, Channel: t.ChannelName,
	}
	st, err := d.mm.Enqueue(ctx, e)
	if err != nil {
		return st, err
	}
	// Kept in memcached: a restarted dispatcher queues it again.
	if err := d.backendTickets.Save(ctx, e, st); err != nil {
		d.log.Warn("backend ticket not stored; it will not survive a restart", "uuid", t.UUID, "err", err)
	}
	return st, nil
}

func (d *Dispatcher) ticketRoutes() {
	d.mux.HandleFunc("POST /v1/tickets", d.backend(d.handleAddTicket))
	d.mux.HandleFunc("GET /v1/tickets/{uuid}", d.backend(d.handleGetTicket))
	d.mux.HandleFunc("DELETE /v1/tickets/{uuid}", d.backend(d.handleCancelTicket))
	d.mux.HandleFunc("GET /v1/assignments", d.backend(d.handleAssignments))
}

// handleAddTicket serves POST /v1/tickets (backend token).
func (d *Dispatcher) handleAddTicket(w http.ResponseWriter, r *http.Request) {
	var t TicketRequest
	if err := decodeJSON(w, r, &t); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	st, err := d.addTicket(r.Context(), t)
	if err == nil {
		writeJSON(w, http.StatusAccepted, map[string]any{"type": "queued", "uuid": t.UUID, "id": t.UUID,
			"profile": st.Profile, "mode": st.Profile, "expires": st.Expires})
		return
	}
	httpCode, code, _ := ticketError(err)
	if code == "unavailable" {
		d.log.Error("add ticket", "err", err)
		writeError(w, httpCode, code, "could not queue; try again")
		return
	}
	writeError(w, httpCode, code, err.Error())
}

// ticketError maps an intake error to its HTTP status, error code and
// gRPC code.
func ticketError(err error) (int, string, codes.Code) {
	code := queueErrCode(err)
	switch code {
	case "bad_ticket", "unknown_profile", "bad_search_fields", "field_not_allowed":
		return http.StatusBadRequest, code, codes.InvalidArgument
	case "bad_party", "party_too_large":
		return http.StatusBadRequest, "bad_party", codes.InvalidArgument
	case "already_queued", "in_room":
		return http.StatusConflict, code, codes.AlreadyExists
	}
	return http.StatusServiceUnavailable, "unavailable", codes.Unavailable
}

// TicketStatus is GET /v1/tickets/{uuid}.
type TicketStatus struct {
	UUID       string                  `json:"uuid"`
	Queue      matchmaking.QueueStatus `json:"queue"`
	Assignment json.RawMessage         `json:"assignment,omitempty"` // the last match message, for an hour
}

func (d *Dispatcher) handleGetTicket(w http.ResponseWriter, r *http.Request) {
	ts, err := d.ticketStatus(r.Context(), r.PathValue("uuid"))
	switch {
	case errors.Is(err, errBadTicket):
		writeError(w, http.StatusBadRequest, "bad_uuid", "bad uuid")
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "store_unavailable", "store unavailable")
	case ts.Queue.State == matchmaking.StateNone && ts.Assignment == nil:
		writeJSON(w, http.StatusNotFound, ts)
	default:
		writeJSON(w, http.StatusOK, ts)
	}
}

// ticketStatus is a ticket's queue state and last assignment.
func (d *Dispatcher) ticketStatus(ctx context.Context, id string) (TicketStatus, error) {
	if !ids.Valid(id) {
		return TicketStatus{}, fmt.Errorf("ticket status: %w: bad uuid", errBadTicket)
	}
	ts := TicketStatus{UUID: id, Queue: d.mm.Status(ctx, id)}
	if it, err := d.store.Get(ctx, assignmentKey(id)); err == nil {
		ts.Assignment = it.Value
	} else if !errors.Is(err, store.ErrNotFound) {
		return ts, fmt.Errorf("ticket status: %w", err)
	}
	return ts, nil
}

// cancelTicket cancels a backend's (or any) waiting ticket and forgets
// its stored record.
func (d *Dispatcher) cancelTicket(ctx context.Context, id string) error {
	if err := d.mm.Cancel(ctx, id, 0); err != nil {
		return err
	}
	d.backendTickets.Forget(ctx, id)
	return nil
}

func (d *Dispatcher) handleCancelTicket(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("uuid")
	if err := d.cancelTicket(r.Context(), id); err != nil {
		writeJSON(w, http.StatusConflict, queueErrMsg(err, matchmaking.QueueStatus{}))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"type": "cancelled", "uuid": id})
}

// matchService is the gRPC Match service (proto/match.proto).
type matchService struct {
	matchpb.UnimplementedMatchServer
	d *Dispatcher
}

func (s *matchService) authorise(ctx context.Context) error {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok && auth.EqualSecret(strings.TrimSpace(t), s.d.cfg.BackendToken) {
			return nil
		}
	}
	return status.Error(codes.Unauthenticated, "backend token required (authorization: Bearer TOKEN)")
}

// AddPlayer implements matchpb.MatchServer.
func (s *matchService) AddPlayer(ctx context.Context, r *matchpb.AddPlayerRequest) (*matchpb.AddPlayerResponse, error) {
	if err := s.authorise(ctx); err != nil {
		return nil, err
	}
	_, err := s.d.addTicket(ctx, TicketRequest{Score: int(r.GetScore()), UUID: r.GetUuid(), Username: r.GetUsername(),
		Photo: r.GetPhoto(), ChannelName: r.GetChannelName(), Profile: r.GetMode()})
	if err == nil {
		return &matchpb.AddPlayerResponse{Status: "queued"}, nil
	}
	if _, code, gc := ticketError(err); code != "unavailable" {
		return nil, status.Error(gc, err.Error())
	}
	return nil, status.Error(codes.Unavailable, "could not queue; try again")
}

// thriftAdd is the Thrift intake's add_player: a backend ticket of the
// default profile with the score the caller vouches for.
func (d *Dispatcher) thriftAdd(ctx context.Context, score int32, uuid, username, photo, channelName string) error {
	_, err := d.addTicket(ctx, TicketRequest{Score: int(score), UUID: uuid, Username: username, Photo: photo,
		ChannelName: channelName, seedNames: true})
	if err != nil {
		if _, code, _ := ticketError(err); code != "unavailable" {
			return fmt.Errorf("add_player: %s: %w", code, err)
		}
		d.log.Error("thrift add_player", "err", err)
		return errors.New("add_player: unavailable: could not queue; try again")
	}
	return nil
}

// cutRunes returns s cut to at most n runes.
func cutRunes(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}
