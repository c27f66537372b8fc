package matchmaking

import (
	"fmt"
	"math"
	"testing"
)

// Equal search fields get one set; any difference (a value, a name, a
// double's sign, the tags' order) gets another; empty ones are left as
// they are.
func TestInternerSharesEqualFields(t *testing.T) {
	sf := func(d map[string]float64, s map[string]string, tags ...string) *SearchFields {
		return &SearchFields{Doubles: d, Strings: s, Tags: tags}
	}
	base := sf(map[string]float64{"level": 5, "mmr": 1.5}, map[string]string{"region": "eu", "mode": "ranked"}, "a", "b")
	for _, tc := range []struct {
		name string
		s    *SearchFields
		same bool
	}{
		{"equal, maps built in another order", sf(map[string]float64{"mmr": 1.5, "level": 5}, map[string]string{"mode": "ranked", "region": "eu"}, "a", "b"), true},
		{"another double", sf(map[string]float64{"level": 6, "mmr": 1.5}, map[string]string{"region": "eu", "mode": "ranked"}, "a", "b"), false},
		{"minus zero", sf(map[string]float64{"level": 5, "mmr": 1.5, "z": math.Copysign(0, -1)}, map[string]string{"region": "eu", "mode": "ranked"}, "a", "b"), false},
		{"another string", sf(map[string]float64{"level": 5, "mmr": 1.5}, map[string]string{"region": "us", "mode": "ranked"}, "a", "b"), false},
		{"a string named as a double", sf(map[string]float64{"mmr": 1.5}, map[string]string{"level": "5", "region": "eu", "mode": "ranked"}, "a", "b"), false},
		{"tags in another order", sf(map[string]float64{"level": 5, "mmr": 1.5}, map[string]string{"region": "eu", "mode": "ranked"}, "b", "a"), false},
		{"a tag fewer", sf(map[string]float64{"level": 5, "mmr": 1.5}, map[string]string{"region": "eu", "mode": "ranked"}, "a"), false},
		{"names that run together", sf(map[string]float64{"level": 5, "mmr": 1.5}, map[string]string{"region": "eu", "mode": "ranked"}, "ab"), false},
	} {
		var in interner
		first := in.intern(base)
		got := in.intern(tc.s)
		if first != base || (got == first) != tc.same {
			t.Errorf("%s: shared %v, want %v", tc.name, got == first, tc.same)
		}
		if !tc.same && got != tc.s {
			t.Errorf("%s: a new set was not kept as given", tc.name)
		}
	}
	var in interner
	empty := &SearchFields{}
	if in.intern(empty) != empty || len(in.sets) != 0 {
		t.Error("an empty set was interned")
	}
}

// The interner forgets everything past maxInterned sets; what it handed
// out stays as it was.
func TestInternerIsBounded(t *testing.T) {
	var in interner
	first := in.intern(&SearchFields{Tags: []string{"x0"}})
	for i := 1; i <= maxInterned; i++ {
		in.intern(&SearchFields{Tags: []string{fmt.Sprint("x", i)}})
	}
	if len(in.sets) > maxInterned {
		t.Fatalf("%d sets remembered", len(in.sets))
	}
	again := &SearchFields{Tags: []string{"x0"}}
	if in.intern(again) != again || first.Tags[0] != "x0" {
		t.Fatal("a forgotten set was handed out again")
	}
}

// Tickets queued with equal search fields share one set, which a match
// function's request then carries once.
func TestTicketsShareEqualSearchFields(t *testing.T) {
	m := newStepper(t, Config{}).m
	for _, id := range []string{"a", "b"} {
		e := Enqueue{Player: Player{UUID: id, Score: 1500}, Profile: DefaultProfile, Source: SourceBackend,
			Search: SearchFields{Strings: map[string]string{"region": "eu"}, Tags: []string{"ranked"}}}
		if _, err := m.enqueue(e, epoch); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := m.ticket("a"), m.ticket("b"); a.search != b.search {
		t.Fatal("equal search fields not shared")
	}
}
