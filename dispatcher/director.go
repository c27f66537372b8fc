package dispatcher

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchpb"
)

// FetchMatches implements matchpb.MatchServer: director mode. While the
// stream is open, the profile's matches come to it instead of arena's
// fight servers.
func (s *matchService) FetchMatches(r *matchpb.FetchMatchesRequest, stream grpc.ServerStreamingServer[matchpb.DirectedMatch]) error {
	if err := s.authorise(stream.Context()); err != nil {
		return err
	}
	if _, err := s.d.mm.Profile(stream.Context(), r.GetProfile()); err != nil {
		if errors.Is(err, matchmaking.ErrUnknownProfile) {
			return status.Error(codes.NotFound, err.Error())
		}
		return status.Error(codes.Unavailable, err.Error())
	}
	profile := r.GetProfile()
	if profile == "" {
		profile = matchmaking.DefaultProfile
	}
	ch, stop, err := s.d.director.Fetch(profile)
	if err != nil {
		return status.Error(codes.AlreadyExists, err.Error())
	}
	defer stop()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case m := <-ch:
			out := &matchpb.DirectedMatch{MatchId: m.ID, Profile: m.Profile}
			for _, p := range m.Players {
				out.Players = append(out.Players, &matchpb.MatchedPlayer{Uuid: p.UUID, Username: p.Username, Photo: p.Photo, Score: int32(p.Score)})
			}
			for _, t := range m.Teams {
				out.Teams = append(out.Teams, &matchpb.Team{Name: t.Name, Uuids: t.Players})
			}
			if err := stream.Send(out); err != nil {
				return err
			}
		}
	}
}

// AssignTickets implements matchpb.MatchServer.
func (s *matchService) AssignTickets(ctx context.Context, r *matchpb.AssignTicketsRequest) (*matchpb.AssignTicketsResponse, error) {
	if err := s.authorise(ctx); err != nil {
		return nil, err
	}
	switch err := s.d.director.Assign(r.GetMatchId(), r.GetConnection()); {
	case err == nil:
		return &matchpb.AssignTicketsResponse{}, nil
	case errors.Is(err, matchmaking.ErrBadConnection):
		return nil, status.Error(codes.InvalidArgument, err.Error())
	default:
		return nil, status.Error(codes.NotFound, err.Error())
	}
}
