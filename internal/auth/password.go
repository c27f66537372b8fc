package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password hashing: argon2id with OWASP's minimum parameters (19 MiB, two
// passes, one lane), a 16-byte random salt and a 32-byte key, stored in
// the PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$SALT$KEY   (SALT, KEY: unpadded base64)
//
// Hashing costs about 19 MiB and tens of milliseconds of one core, so at
// most one hash per CPU runs at once (callers wait their turn); login
// rate limits keep the queue short.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
)

// Password length bounds, in bytes.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// ErrBadPassword is returned by HashPassword for a password out of bounds.
var ErrBadPassword = errors.New("password must be 8 to 128 bytes")

// errBadHash is returned by CheckPassword for a stored hash it cannot read.
var errBadHash = errors.New("unreadable password hash")

var hashSlots = make(chan struct{}, runtime.NumCPU())

func argonKey(pw, salt []byte, m uint32, t uint32, p uint8) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(pw, salt, t, m, p, argonKeyLen)
}

// HashPassword returns the argon2id hash of pw in PHC string form.
func HashPassword(pw string) (string, error) {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return "", ErrBadPassword
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argonKey([]byte(pw), salt, argonMemory, argonTime, argonThreads)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches hash (from HashPassword),
// comparing in constant time. A hash it cannot parse is an error.
func CheckPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false, errBadHash
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) != argonKeyLen {
		return false, errBadHash
	}
	if len(pw) > MaxPasswordLen {
		return false, nil
	}
	got := argonKey([]byte(pw), salt, m, t, p)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is checked against when an account does not exist, so a
// login takes as long whether or not the account name is taken. It has
// the parameters of HashPassword's hashes and a key no password yields;
// it is built, not hashed, so that no process pays an argon2 hash (0.1 s,
// 19 MiB) when it starts.
var dummyHash = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
	base64.RawStdEncoding.EncodeToString([]byte("arena-dummy-salt")), base64.RawStdEncoding.EncodeToString(make([]byte, argonKeyLen)))

// CheckNoPassword spends the time of one CheckPassword and reports false:
// what a login answers for an account that does not exist.
func CheckNoPassword(pw string) bool {
	_, _ = CheckPassword(dummyHash, pw)
	return false
}
