// Package ids is the one definition of an arena id: player uuids, room ids,
// map ids, ball ids, channel room ids and line-protocol units all have this
// form, checked by Valid everywhere they arrive from outside.
package ids

// MaxLen is the longest id, in bytes.
const MaxLen = 64

// Valid reports whether s is an id: 1 to MaxLen bytes of [A-Za-z0-9_-]
// (canonical UUIDs and most account ids). Such an id is safe in a store
// key, in a URL path segment, in a line-protocol field and inside a JSON
// string without escaping.
func Valid[T ~string | ~[]byte](s T) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte[s[i]] {
			return false
		}
	}
	return true
}

// Rule is Valid's rule in words, for error messages and docs.
const Rule = "1 to 64 of [A-Za-z0-9_-]"

var idByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['_'], t['-'] = true, true
	return t
}()
