package dispatcher

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchpb"
)

func grpcClient(t *testing.T, td *testDispatcher) (matchpb.MatchClient, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(td.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return matchpb.NewMatchClient(conn), metadata.AppendToOutgoingContext(tctx(t), "authorization", "Bearer "+tBackend)
}

// waitSubscribers waits until n assignment streams are subscribed.
func (td *testDispatcher) waitSubscribers(t testing.TB, n int) {
	t.Helper()
	waitfor.Cond(t, fmt.Sprintf("%d assignment subscribers", n), func() bool {
		td.assignments.mu.Lock()
		defer td.assignments.mu.Unlock()
		return len(td.assignments.subs) == n
	})
}

// Backend tickets are kept in memcached: a dispatcher that restarts on
// the same store queues them again and matches them.
func TestBackendTicketsSurviveARestart(t *testing.T) {
	st := storetest.New(t)
	slow := func(c *Config) { c.Match.Tick = time.Hour }
	first := newTestDispatcherOn(t, st, slow)
	for _, id := range []string{"keep-1", "keep-2"} {
		if code := first.call(t, "POST", "/v1/tickets", tBackend, map[string]any{"score": 1500, "uuid": id, "username": id, "channel_name": "c-" + id}, nil); code != 202 {
			t.Fatalf("add %s: %d", id, code)
		}
	}
	if code := first.call(t, "POST", "/v1/tickets", tBackend, map[string]any{"score": 1500, "uuid": "gone", "username": "g"}, nil); code != 202 {
		t.Fatal("add gone")
	}
	if code := first.call(t, "DELETE", "/v1/tickets/gone", tBackend, nil, nil); code != 200 {
		t.Fatal("cancel gone")
	}
	first.stop()

	second := newTestDispatcherOn(t, st, nil)
	ctx := context.Background()
	waitfor.Cond(t, "the tickets queued again", func() bool {
		return second.mm.Status(ctx, "keep-1").State == matchmaking.StateQueued && second.mm.Status(ctx, "keep-2").State == matchmaking.StateQueued
	})
	if st := second.mm.Status(ctx, "gone"); st.State != matchmaking.StateNone {
		t.Fatalf("a cancelled ticket came back: %+v", st)
	}
	if code := second.call(t, "POST", "/v1/tickets", tBackend, map[string]any{"score": 1500, "uuid": "keep-3", "username": "three"}, nil); code != 202 {
		t.Fatal("add keep-3")
	}
	for _, id := range []string{"keep-1", "keep-2", "keep-3"} {
		waitfor.Cond(t, id+" matched", func() bool {
			var ts TicketStatus
			return second.call(t, "GET", "/v1/tickets/"+id, tBackend, nil, &ts) == 200 && ts.Assignment != nil
		})
	}
}

// The backend-wide stream resumes after a cursor: a consumer that was
// down gets every assignment it missed, once.
func TestAssignmentsResumeFromACursor(t *testing.T) {
	td := newTestDispatcher(t, nil)
	c, ctx := grpcClient(t, td)
	add := func(prefix string) {
		for i := range 3 {
			if _, err := c.AddPlayer(ctx, &matchpb.AddPlayerRequest{Score: 1500, Uuid: fmt.Sprintf("%s%d", prefix, i), Username: "x", ChannelName: prefix}); err != nil {
				t.Fatal(err)
			}
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	stream, err := c.Assignments(sctx, &matchpb.AssignmentsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	td.waitSubscribers(t, 1)
	add("a")
	var last uint64
	for range 3 {
		a, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if a.GetCursor() <= last || a.GetEvent() != "match" {
			t.Fatalf("cursor %d after %d (%+v)", a.GetCursor(), last, a)
		}
		last = a.GetCursor()
	}
	cancel() // the consumer goes down
	add("b")
	waitfor.Cond(t, "b matched", func() bool {
		var ts TicketStatus
		return td.call(t, "GET", "/v1/tickets/b2", tBackend, nil, &ts) == 200 && ts.Assignment != nil
	})
	stream, err = c.Assignments(ctx, &matchpb.AssignmentsRequest{After: last})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 3 {
		a, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if a.GetCursor() <= last || a.GetChannelName() != "b" || seen[a.GetUuid()] {
			t.Fatalf("replayed %+v after cursor %d", a, last)
		}
		seen[a.GetUuid()] = true
	}
	// Live again: the next ones come on the same stream.
	add("c")
	a, err := stream.Recv()
	if err != nil || a.GetChannelName() != "c" {
		t.Fatalf("live after replay: %+v %v", a, err)
	}
}

// WatchAssignments streams one ticket's match; GetTicket and
// CreateTicket carry search fields and the ticket errors.
func TestTicketGRPCAndWatchAssignments(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.Match.TicketTTL = 2 * time.Second })
	c, ctx := grpcClient(t, td)
	if _, err := c.CreateTicket(ctx, &matchpb.Ticket{Uuid: "w0", Username: "w", Score: 1500, Profile: "nosuch"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("unknown profile: %v", err)
	}
	if _, err := c.CreateTicket(ctx, &matchpb.Ticket{Uuid: "w0", Username: "w", Score: 1500,
		SearchFields: &matchpb.SearchFields{Tags: []string{"a", "a"}}}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a tag twice: %v", err)
	}
	watch, err := c.WatchAssignments(ctx, &matchpb.TicketID{Uuid: "w0"})
	if err != nil {
		t.Fatal(err)
	}
	td.waitSubscribers(t, 1)
	for i := range 3 {
		ts, err := c.CreateTicket(ctx, &matchpb.Ticket{Uuid: fmt.Sprintf("w%d", i), Username: "w", Score: 1500,
			SearchFields: &matchpb.SearchFields{Strings: map[string]string{"region": "eu"}}})
		if err != nil || ts.GetState() != matchmaking.StateQueued || ts.GetExpiresUnix() == 0 {
			t.Fatalf("create: %+v %v", ts, err)
		}
	}
	a, err := watch.Recv()
	if err != nil || a.GetUuid() != "w0" || a.GetRoom() == "" || len(a.GetPlayers()) != 3 {
		t.Fatalf("watched %+v %v", a, err)
	}
	got, err := c.GetTicket(ctx, &matchpb.TicketID{Uuid: "w0"})
	if err != nil || got.GetAssignment().GetRoom() != a.GetRoom() {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := c.GetTicket(ctx, &matchpb.TicketID{Uuid: "nobody"}); status.Code(err) != codes.NotFound {
		t.Fatalf("get unknown: %v", err)
	}
	// A lone ticket expires: its watcher is told.
	lone, err := c.WatchAssignments(ctx, &matchpb.TicketID{Uuid: "lone"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTicket(ctx, &matchpb.Ticket{Uuid: "lone", Username: "l", Score: 9000}); err != nil {
		t.Fatal(err)
	}
	x, err := lone.Recv()
	if err != nil || x.GetEvent() != "expired" || x.GetUuid() != "lone" {
		t.Fatalf("expiry: %+v %v", x, err)
	}
	if _, err := c.DeleteTicket(ctx, &matchpb.TicketID{Uuid: "lone"}); status.Code(err) != codes.NotFound {
		t.Fatalf("delete an expired ticket: %v", err)
	}
}
