package mapbench

import (
	"encoding/json"
	"fmt"

	"github.com/arena-game/arena/mapserver"
)

// benchWorld builds n square maps of side size, "bench0".."bench{n-1}",
// each with two portals to every other map (one on the left half, one on
// the right), arriving 150 units below the matching portal back.
func benchWorld(n int, size float64) ([]byte, *mapserver.World, error) {
	type pt struct {
		X float64 `json:"x"`
		Y float64 `json:"y"`
	}
	type portal struct {
		ID      string         `json:"id"`
		Rect    map[string]any `json:"rect"`
		To      string         `json:"to"`
		Arrival pt             `json:"arrival"`
	}
	type mp struct {
		ID      string   `json:"id"`
		Name    string   `json:"name"`
		Width   float64  `json:"width"`
		Height  float64  `json:"height"`
		Spawn   pt       `json:"spawn"`
		Portals []portal `json:"portals"`
	}
	const side = 60.0
	// center of the portal from a to b, copy k (0 or 1)
	slot := func(a, b int) int {
		s := 0
		for j := 0; j < n; j++ {
			if j == a {
				continue
			}
			if j == b {
				return s
			}
			s++
		}
		return s
	}
	center := func(a, b, k int) pt {
		s := slot(a, b)
		rows := float64(n) // n-1 other maps, rows spread over the height
		return pt{X: size * (0.2 + 0.6*float64(k)), Y: size * (float64(s) + 1) / rows}
	}
	var maps []mp
	for a := 0; a < n; a++ {
		m := mp{ID: fmt.Sprint("bench", a), Name: fmt.Sprint("Bench ", a), Width: size, Height: size,
			Spawn: pt{size / 2, size / 2}}
		for b := 0; b < n; b++ {
			if b == a {
				continue
			}
			for k := 0; k < 2; k++ {
				c := center(a, b, k)
				back := center(b, a, k)
				m.Portals = append(m.Portals, portal{
					ID:      fmt.Sprintf("bench%d-bench%d-%d", a, b, k),
					Rect:    map[string]any{"x": c.X - side/2, "y": c.Y - side/2, "w": side, "h": side},
					To:      fmt.Sprint("bench", b),
					Arrival: pt{back.X, back.Y + 150},
				})
			}
		}
		maps = append(maps, m)
	}
	b, err := json.MarshalIndent(map[string]any{"version": 1, "start": "bench0", "maps": maps}, "", " ")
	if err != nil {
		return nil, nil, err
	}
	w, err := mapserver.ParseWorld(b)
	if err != nil {
		return nil, nil, fmt.Errorf("bench world: %w", err)
	}
	return b, w, nil
}
