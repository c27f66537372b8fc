package records

import (
	"context"
	"sync"
	"testing"

	"github.com/arena-game/arena/internal/store"
)

func TestUpdatePlayerConcurrent(t *testing.T) {
	s := store.NewMemory()
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := UpdatePlayer(ctx, s, "u1", func(p *Player) { p.Games++ }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	p, _, err := GetPlayer(ctx, s, "u1")
	if err != nil || p.Games != 20 || p.Rating != DefaultRating {
		t.Fatalf("got %+v, %v; want 20 games at the default rating", p, err)
	}
}
