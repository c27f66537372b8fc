package elo

import (
	"slices"
	"testing"
)

func TestDeltas(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ratings []int
		ranks   []int
		want    []int
	}{
		{"1v1 equal", []int{1500, 1500}, []int{0, 1}, []int{16, -16}},
		{"1v1 draw", []int{1500, 1500}, []int{0, 0}, []int{0, 0}},
		{"1v1 upset", []int{1500, 1900}, []int{0, 1}, []int{29, -29}},
		{"1v1 favourite wins", []int{1900, 1500}, []int{0, 1}, []int{3, -3}},
		{"3 equal ranked", []int{1500, 1500, 1500}, []int{0, 1, 2}, []int{16, 0, -16}},
		{"3 equal, losers draw", []int{1500, 1500, 1500}, []int{0, 1, 1}, []int{16, -8, -8}},
		{"3 timeout tie on top", []int{1500, 1500, 1500}, []int{0, 0, 2}, []int{8, 8, -16}},
		{"one player", []int{1500}, []int{0}, []int{0}},
	} {
		if got := Deltas(tc.ratings, tc.ranks, K); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
