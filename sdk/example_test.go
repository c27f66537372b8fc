package sdk_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

// Echo is a whole game: every message a player sends goes to every other
// player of its room, and the first to say "win" wins.
type Echo struct{}

// NewRoom makes one room's rules.
func (Echo) NewRoom(r *sdk.Room) (sdk.Handler, error) { return &echoRoom{r: r}, nil }

type echoRoom struct{ r *sdk.Room }

func (e *echoRoom) Join(p *sdk.Player, how sdk.JoinKind) {
	_ = e.r.SendJSON(p, map[string]any{"type": "hello", "you": p.UUID, "rejoin": how != sdk.JoinFirst})
}

func (e *echoRoom) Leave(p *sdk.Player, why sdk.LeaveReason) {
	_ = e.r.BroadcastJSON(map[string]any{"type": "left", "uuid": p.UUID, "why": why.String()})
}

func (e *echoRoom) Message(p *sdk.Player, m sdk.Message) {
	if m.Type == "win" {
		others := []string{}
		for _, o := range e.r.Players() {
			if o != p {
				others = append(others, o.UUID)
			}
		}
		e.r.End(sdk.Ranking("said_win", []string{p.UUID}, others))
		return
	}
	_ = e.r.BroadcastExcept(p, m.Raw)
}

// A game's binary is one call: the arena host that spawns it (arena up
// --game echo=PATH) does the rest.
func ExampleServe() {
	if err := sdk.Serve(Echo{}); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
	}
}

// Ranking turns groups of players, best first, into ranks: equal ranks
// drew.
func ExampleRanking() {
	res := sdk.Ranking("last_standing", []string{"ann"}, []string{"bob", "cat"})
	b, _ := json.Marshal(res.Players)
	fmt.Println(string(b))
	// Output: [{"UUID":"ann","Rank":1,"Score":0,"Left":false,"Extra":null},{"UUID":"bob","Rank":2,"Score":0,"Left":false,"Extra":null},{"UUID":"cat","Rank":2,"Score":0,"Left":false,"Extra":null}]
}

// The example game plays: a message is echoed to the others, "win" ends
// the room with the sender first.
func TestExampleEchoGame(t *testing.T) {
	env := sdktest.New(t, Echo{}, sdk.Config{Game: "echo"})
	room := env.Room(2)
	a := env.Join(room, 0)
	a.Expect("hello")
	b := env.Join(room, 1)
	b.Expect("hello")
	a.Send(`{"type":"note","text":"hi"}`)
	if m := b.Expect("note"); m.Str("text") != "hi" {
		t.Fatalf("echo %v", m)
	}
	b.Send(`{"type":"win"}`)
	if res := a.Expect("result"); res.Str("winner") != room.Players[1].UUID || res.Str("reason") != "said_win" {
		t.Fatalf("result %v", res)
	}
}
