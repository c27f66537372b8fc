// Package safetext is arena's one rule for text that players write and
// other players see: chat messages, fight messages and display names. Text
// is shown to others as it is, so it must not carry characters that are
// invisible or that change how the text around them is displayed:
//
//   - control characters: C0 (U+0000-U+001F, newline and tab included),
//     DEL (U+007F) and C1 (U+0080-U+009F);
//   - bidirectional controls, which can make text display in another order
//     than it is written ("file\u202Etxt.exe" shows as "fileexe.txt"):
//     U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069;
//   - line and paragraph separators (U+2028, U+2029) and the byte order
//     mark or zero-width no-break space (U+FEFF).
//
// Zero-width joiners (U+200C, U+200D) and variation selectors stay: emoji
// sequences and several scripts need them.
//
// Messages with such characters are refused (Check); display names, which
// come inside tokens an account service may have minted, have them
// removed (StripName).
package safetext

import (
	"fmt"
	"strings"
	"unicode"
)

// Unsafe reports whether r is one of the characters the package comment
// lists.
func Unsafe(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	case r == 0x2028, r == 0x2029, r == 0xfeff:
		return true
	}
	return false
}

// Check returns an error naming the first unsafe character of s, or nil.
func Check(s string) error {
	if i := strings.IndexFunc(s, Unsafe); i >= 0 {
		r := []rune(s[i:])[0]
		return fmt.Errorf("text holds %U (control, bidirectional or invisible characters are not allowed)", r)
	}
	return nil
}

// StripName returns name without unsafe characters and without any other
// invisible format character (Unicode category Cf, joiners included: a
// name needs none), with surrounding space trimmed.
func StripName(name string) string {
	if strings.IndexFunc(name, stripFromName) < 0 {
		return strings.TrimSpace(name)
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if stripFromName(r) {
			return -1
		}
		return r
	}, name))
}

func stripFromName(r rune) bool { return Unsafe(r) || unicode.Is(unicode.Cf, r) }
