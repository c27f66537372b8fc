package fightserver

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
		{"1v1 equal", []int{1500, 1500}, []int{0, 1}, []int{16, -16}},
		{"1v1 draw", []int{1500, 1500}, []int{0, 0}, []int{0, 0}},
		{"1v1 upset", []int{1500, 1900}, []int{0, 1}, []int{29, -29}},
		{"1v1 favourite wins", []int{1900, 1500}, []int{0, 1}, []int{3, -3}},
		{"3 equal ranked", []int{1500, 1500, 1500}, []int{0, 1, 2}, []int{16, 0, -16}},
		{"3 equal, losers draw", []int{1500, 1500, 1500}, []int{0, 1, 1}, []int{16, -8, -8}},
		{"3 timeout tie on top", []int{1500, 1500, 1500}, []int{0, 0, 2}, []int{8, 8, -16}},
		{"one player", []int{1500}, []int{0}, []int{0}},
	} {
		if got := EloDeltas(tc.ratings, tc.ranks, EloK); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestRoomPlacement(t *testing.T) {
	a, b, c, d := &member{hp: 100}, &member{hp: 40}, &member{state: stOut, outSeq: 1}, &member{state: stLeft, outSeq: 2}
	r := &room{members: []*member{c, a, d, b}}
	order, ranks := r.placement()
	if !slices.Equal(order, []*member{a, b, d, c}) || !slices.Equal(ranks, []int{0, 1, 2, 3}) {
		t.Fatalf("order %v ranks %v", order, ranks)
	}
	b.hp = 100
	if _, ranks := r.placement(); !slices.Equal(ranks, []int{0, 0, 2, 3}) {
		t.Fatalf("tie ranks %v", ranks)
	}
}
