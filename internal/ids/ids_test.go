package ids

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{"", false},
		{"a", true},
		{"550e8400-e29b-41d4-a716-446655440000", true},
		{"room_01-X", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"a.b", false}, // chat once allowed '.' in room ids
		{"a b", false},
		{"a|b", false},
		{"a/b", false},
		{"a\"b", false},
		{"a\nb", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tc := range tests {
		if got := Valid(tc.id); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.id, got, tc.want)
		}
		if got := Valid([]byte(tc.id)); got != tc.want {
			t.Errorf("Valid([]byte(%q)) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func FuzzValid(f *testing.F) {
	f.Add("abc-DEF_123")
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) >= 1 && len(s) <= MaxLen
		for _, r := range []byte(s) {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				want = false
			}
		}
		if Valid(s) != want {
			t.Fatalf("Valid(%q) = %v, want %v", s, !want, want)
		}
	})
}

func BenchmarkValid(b *testing.B) {
	id := "550e8400-e29b-41d4-a716-446655440000"
	for b.Loop() {
		if !Valid(id) {
			b.Fatal("invalid")
		}
	}
}
