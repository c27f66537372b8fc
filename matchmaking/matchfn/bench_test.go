package matchfn

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/arena-game/arena/examples/matchfn/duo"
	"github.com/arena-game/arena/matchmaking"
)

// benchRequest is one tick's request of the example's profile over n
// candidates (regions eu/us/asia, ratings Normal(1500, 300)).
func benchRequest(b *testing.B, n int) *matchmaking.MatchRequest {
	ps, err := matchmaking.LoadProfiles("../../examples/matchfn/profiles.yaml", []string{"duo"})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	regions := []string{"eu", "us", "asia"}
	pool := make([]matchmaking.Candidate, n)
	for i := range pool {
		pool[i] = matchmaking.Candidate{ID: fmt.Sprintf("c%06d", i), Rating: 1500 + int(rng.NormFloat64()*300), Members: 1,
			Created: time.Unix(0, int64(i)), Search: &matchmaking.SearchFields{Strings: map[string]string{"region": regions[i%3]}}}
	}
	return &matchmaking.MatchRequest{Profile: &ps.Profiles[0], Pools: [][]matchmaking.Candidate{pool}, Now: time.Unix(10, 0)}
}

// The example function (2 vs 2 by region and rating) on 10,000
// candidates, built in (called in process) and as a plugin binary: the
// difference is the plugin call's overhead (encode, RPC, decode).
func BenchmarkFunction10k(b *testing.B) {
	req := benchRequest(b, 10_000)
	b.Run("builtin", func(b *testing.B) {
		for b.Loop() {
			if _, err := duo.TwoVsTwo(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("plugin", func(b *testing.B) {
		p := NewPlugin("duo", build(b, "github.com/arena-game/arena/examples/matchfn"), nil, quiet())
		defer p.Close()
		if _, err := p.Match(context.Background(), req); err != nil { // start it
			b.Fatal(err)
		}
		b.ResetTimer()
		for b.Loop() {
			if _, err := p.Match(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode-decode", func(b *testing.B) {
		props, _ := duo.TwoVsTwo(context.Background(), req)
		for b.Loop() {
			wire := EncodeRequest(req)
			got, err := DecodeRequest(wire)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := DecodeResponse(req, EncodeResponse(got, props)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
