package playerdb

import (
	"slices"
	"testing"
)

func TestEloDeltas(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ratings []int
		ranks   []int
		want    []int
	}{
		{"1v1 equal", []int{1500, 1500}, []int{1, 2}, []int{16, -16}},
		{"1v1 draw", []int{1500, 1500}, []int{1, 1}, []int{0, 0}},
		{"1v1 upset", []int{1500, 1900}, []int{1, 2}, []int{29, -29}},
		{"1v1 favourite wins", []int{1900, 1500}, []int{1, 2}, []int{3, -3}},
		{"3 equal ranked", []int{1500, 1500, 1500}, []int{1, 2, 3}, []int{16, 0, -16}},
		{"3 equal, losers draw", []int{1500, 1500, 1500}, []int{1, 2, 2}, []int{16, -8, -8}},
		{"3 timeout tie on top", []int{1500, 1500, 1500}, []int{1, 1, 3}, []int{8, 8, -16}},
		{"ranks from zero", []int{1500, 1500}, []int{0, 1}, []int{16, -16}},
		{"one player", []int{1500}, []int{1}, []int{0}},
		{"length mismatch", []int{1500, 1500}, []int{1}, []int{0, 0}},
	} {
		if got := EloDeltas(tc.ratings, tc.ranks, EloK); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func BenchmarkEloDeltas(b *testing.B) {
	ratings, ranks := []int{1500, 1620, 1433, 1710}, []int{2, 1, 4, 3}
	for b.Loop() {
		EloDeltas(ratings, ranks, EloK)
	}
}
