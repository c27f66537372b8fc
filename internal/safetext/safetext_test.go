package safetext

import "testing"

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		text string
		ok   bool
	}{
		{"hello", true},
		{"héllo wörld ✓ 你好 مرحبا", true},
		{"family 👨\u200d👩\u200d👧", true}, // ZWJ emoji sequence
		{"heart ❤\ufe0f", true},          // variation selector
		{"line\nbreak", false},
		{"tab\there", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"evil\u202egnp.exe", false},
		{"\u202aembedded", false},
		{"isolate\u2066x\u2069", false},
		{"mark\u200f", false},
		{"arabic mark\u061c", false},
		{"sep\u2028", false},
		{"\ufeffbom", false},
	} {
		if err := Check(tc.text); (err == nil) != tc.ok {
			t.Errorf("Check(%q) = %v, want ok=%v", tc.text, err, tc.ok)
		}
	}
}

func TestStripName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Ann", "Ann"},
		{"  Ann  ", "Ann"},
		{"evil\u202egnp.exe", "evilgnp.exe"},
		{"a\u200db\u200bc", "abc"}, // joiners and zero-width spaces go from names
		{"\u2066\u2069", ""},
		{"Zoë", "Zoë"},
		{"tab\tname\n", "tabname"},
	} {
		if got := StripName(tc.in); got != tc.want {
			t.Errorf("StripName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzStripName(f *testing.F) {
	f.Add("evil\u202egnp.exe")
	f.Fuzz(func(t *testing.T, s string) {
		out := StripName(s)
		if Check(out) != nil {
			t.Fatalf("StripName(%q) = %q still unsafe", s, out)
		}
		if StripName(out) != out {
			t.Fatalf("StripName not idempotent on %q", s)
		}
	})
}
