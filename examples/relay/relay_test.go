package relay_test

import (
	"testing"
	"time"

	"github.com/arena-game/arena/examples/relay"
	"github.com/arena-game/arena/sdk"
	"github.com/arena-game/arena/sdk/sdktest"
)

func TestRelaysToTheOthers(t *testing.T) {
	for _, tick := range []time.Duration{0, 20 * time.Millisecond} {
		env := sdktest.New(t, &relay.Game{Tick: tick}, sdk.Config{})
		room := env.Room(3)
		var cl []*sdktest.Client
		for i := range 3 {
			c := env.Join(room, i)
			cl = append(cl, c)
			for _, x := range cl { // the newcomer is announced to everyone
				for m := x.Expect("create_player"); m.Str("uuid") != room.Players[i].UUID; m = x.Expect("create_player") {
				}
			}
		}
		cl[0].Send(` {"type":"event","ts":7, "x":[1,2]} `)
		cl[0].Send(`{"type":"event","ts":8}`)
		for _, c := range cl[1:] {
			for _, ts := range []float64{7, 8} {
				m := c.Expect("event")
				if m.Str("from") != room.Players[0].UUID || m.Num("ts") != ts {
					t.Fatalf("tick %v: relayed %v", tick, m)
				}
			}
		}
		cl[0].ExpectOpen() // no echo
	}
}
