package mapserver

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
)

// countConn is a clientConn that counts what it is sent.
type countConn struct{ msgs, bytes atomic.Int64 }

func (c *countConn) Send(b []byte) error { c.msgs.Add(1); c.bytes.Add(int64(len(b))); return nil }
func (c *countConn) SendJSON(any) error  { c.msgs.Add(1); return nil }
func (c *countConn) SendNow(msgs ...[]byte) error {
	for _, m := range msgs {
		_ = c.Send(m)
	}
	return nil
}
func (c *countConn) Close(uint16, string) {}

// BenchmarkInstanceTick measures one tick of interest updates for a map
// of 1,700 players (the bench's density: 6000x6000, view radius 150),
// with a fifth of them moving each tick.
func BenchmarkInstanceTick(b *testing.B) {
	for _, n := range []int{1700, 5000} {
		b.Run(fmt.Sprint(n, "players"), func(b *testing.B) {
			signer, _ := auth.NewSigner("x")
			w, _ := ParseWorld([]byte(`{"maps":[{"id":"m","width":6000,"height":6000,"spawn":{"x":3000,"y":3000}}]}`))
			s, err := New(Deps{Store: store.NewMemory(), Signer: signer, World: w})
			if err != nil {
				b.Fatal(err)
			}
			in := newInstance(s, w.Map("m"))
			rng := rand.New(rand.NewPCG(1, 1))
			conn := &countConn{}
			for i := 0; i < n; i++ {
				ss := &session{srv: s, conn: conn, claims: auth.Claims{Subject: auth.NewUUID(), Name: fmt.Sprint("p", i)}}
				ss.rec = State{X: rng.Float64() * 6000, Y: rng.Float64() * 6000}
				in.join(ss)
			}
			in.update()
			now := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < n/5; j++ {
					p := in.all[rng.IntN(len(in.all))]
					x := min(max(p.x+rng.Float64()*40-20, 0), 6000)
					y := min(max(p.y+rng.Float64()*40-20, 0), 6000)
					now = now.Add(time.Second)
					in.move(moveMsg{s: p.s, p: Point{x, y}, at: now})
				}
				in.update()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/player")
			b.ReportMetric(float64(conn.msgs.Load())/float64(b.N)/float64(n), "msgs/player/tick")
		})
	}
}
