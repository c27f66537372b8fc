package dispatcher

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/internal/wsconn"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchpb"
)

// Director mode: a studio's backend fetches the default profile's
// matches and assigns them its own server; players get that connection on
// /v1/play and WatchAssignments, and are free to queue again at once.
// An unassigned match goes back to the queue.
func TestDirectorFetchesAndAssigns(t *testing.T) {
	td := newTestDispatcher(t, nil)
	// Long enough for the three assignment calls below on a loaded
	// machine; the last part waits for it once.
	td.director.AssignTimeout = 2 * time.Second
	c, ctx := grpcClient(t, td)
	unknown, err := c.FetchMatches(ctx, &matchpb.FetchMatchesRequest{Profile: "nosuch"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unknown.Recv(); status.Code(err) != codes.NotFound {
		t.Fatalf("an unknown profile: %v", err)
	}
	fetch, err := c.FetchMatches(ctx, &matchpb.FetchMatchesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	waitfor.Cond(t, "the fetcher registered", func() bool {
		_, stop, err := td.director.Fetch(matchmaking.DefaultProfile)
		if err == nil {
			stop()
		}
		return err != nil
	})
	second, err := c.FetchMatches(ctx, &matchpb.FetchMatchesRequest{Profile: matchmaking.DefaultProfile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Recv(); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("a second fetcher: %v", err)
	}
	watch, err := c.WatchAssignments(ctx, &matchpb.TicketID{Uuid: "dir-b"})
	if err != nil {
		t.Fatal(err)
	}
	var cls []*wsconn.Client
	for i := range 2 {
		lr := td.login(t, fmt.Sprintf("dir%d", i))
		cl := td.play(t, lr.Token)
		_ = cl.SendJSON(map[string]any{"type": "queue"})
		cls = append(cls, cl)
	}
	if _, err := c.AddPlayer(ctx, &matchpb.AddPlayerRequest{Score: 1500, Uuid: "dir-b", Username: "b"}); err != nil {
		t.Fatal(err)
	}
	m, err := fetch.Recv()
	if err != nil || len(m.GetPlayers()) != 3 || m.GetProfile() != matchmaking.DefaultProfile || len(m.GetTeams()) != 1 {
		t.Fatalf("fetched %+v %v", m, err)
	}
	if _, err := c.AssignTickets(ctx, &matchpb.AssignTicketsRequest{MatchId: m.GetMatchId(), Connection: "\x00"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a bad connection: %v", err)
	}
	if _, err := c.AssignTickets(ctx, &matchpb.AssignTicketsRequest{MatchId: "nosuch", Connection: "x"}); status.Code(err) != codes.NotFound {
		t.Fatalf("an unknown match: %v", err)
	}
	if _, err := c.AssignTickets(ctx, &matchpb.AssignTicketsRequest{MatchId: m.GetMatchId(), Connection: "udp://game-7.studio.test:7777"}); err != nil {
		t.Fatal(err)
	}
	for _, cl := range cls {
		var mm matchOut
		if err := cl.RecvType(ctx, "match", &mm); err != nil {
			t.Fatal(err)
		}
		if mm.Fight != "udp://game-7.studio.test:7777" || mm.Room != m.GetMatchId() || len(mm.Players) != 3 {
			t.Fatalf("play match %+v", mm)
		}
	}
	a, err := watch.Recv()
	if err != nil || a.GetConnection() != "udp://game-7.studio.test:7777" || a.GetRoom() != m.GetMatchId() {
		t.Fatalf("watched %+v %v", a, err)
	}
	// Free to queue again at once: arena hosts nothing.
	waitfor.Cond(t, "dir-b free", func() bool { return td.mm.Status(ctx, "dir-b").State == matchmaking.StateNone })

	// A match the director never assigns goes back to the queue.
	for i := range 3 {
		if _, err := c.AddPlayer(ctx, &matchpb.AddPlayerRequest{Score: 1500, Uuid: fmt.Sprintf("late%d", i), Username: "l"}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := fetch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	// Not assigned within the timeout: the tickets went back to the queue
	// and form the same match again, under a new id.
	again, err := fetch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if again.GetMatchId() == first.GetMatchId() || len(again.GetPlayers()) != 3 || again.GetPlayers()[0].GetUuid()[:4] != "late" {
		t.Fatalf("after the timeout: %+v (first %+v)", again, first)
	}
}
