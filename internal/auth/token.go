// Package auth mints and verifies arena's HMAC-signed tokens.
//
// A token is two base64url (unpadded) parts joined by a dot: the JSON claims
// and the HMAC-SHA256 of those claims under a key derived from the cluster
// secret. Every arena process that knows the secret verifies a token without a
// round trip. A game's own account service can mint the same tokens with the
// secret (see docs/PROTOCOL.md for the exact format).
//
// Tokens have a kind: a player token (identity, from /v1/login), a room token
// (a ticket to one fight room), a map ticket (a ticket to one map server
// instance for one handoff) and so on. Verify refuses a token of another kind,
// so a room ticket can never be used as a login and the other way round.
package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kinds of token.
const (
	KindPlayer = "player" // identity of a player; from /v1/login or an account service
	KindRoom   = "room"   // a ticket into one fight room
	KindMap    = "map"    // a ticket onto one map, for one handoff
	KindChat   = "chat"   // reserved: a chat-only identity
)

// MaxTokenLen is the longest token Verify looks at; longer input is refused
// before any decoding.
const MaxTokenLen = 4096

// Sentinel errors returned (wrapped) by Verify. Callers map them to protocol
// error codes with errors.Is.
var (
	ErrMalformed    = errors.New("malformed token")
	ErrBadSignature = errors.New("bad token signature")
	ErrExpired      = errors.New("token expired")
	ErrWrongKind    = errors.New("wrong token kind")
	ErrNoSecret     = errors.New("no cluster secret configured")
)

// Claims is what a token says. Kind, Subject and Expires are always set on a
// valid token; the other fields depend on the kind.
type Claims struct {
	Kind     string `json:"k"`
	Subject  string `json:"sub"`            // the player's uuid
	Name     string `json:"name,omitempty"` // the player's username
	Photo    string `json:"photo,omitempty"`
	Room     string `json:"room,omitempty"` // room tokens: the room id
	Map      string `json:"map,omitempty"`  // map tickets: the map id
	Addr     string `json:"addr,omitempty"` // map tickets, room tokens: the server the ticket is for
	Version  uint64 `json:"ver,omitempty"`  // map tickets: the handoff record version it claims
	Bot      bool   `json:"bot,omitempty"`  // set for server-side bot players
	Operator bool   `json:"op,omitempty"`   // set for operator identities
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	ID       string `json:"jti,omitempty"` // random id, unique per token
}

// ExpiresAt returns the expiry as a time.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expires, 0) }

// Signer mints and verifies tokens with one cluster secret. It is safe for
// concurrent use.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a Signer for secret. An empty secret is refused with
// ErrNoSecret: tokens signed with a known key would be forgeable.
func NewSigner(secret string) (*Signer, error) {
	if secret == "" {
		return nil, ErrNoSecret
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("arena token key v1"))
	return &Signer{key: m.Sum(nil), now: time.Now}, nil
}

// WithClock returns a copy of s that reads the time from now. Tests use it to
// mint and verify tokens at chosen instants.
func (s *Signer) WithClock(now func() time.Time) *Signer {
	c := *s
	c.now = now
	return &c
}

// Mint signs c with kind set and IssuedAt, Expires (now+ttl) and ID filled
// in, and returns the token.
func (s *Signer) Mint(kind string, c Claims, ttl time.Duration) (string, error) {
	return s.MintFrom(kind, c, 0, ttl)
}

// MintFrom is Mint with an IssuedAt of at least from (unix seconds): the
// token of a player whose tokens issued before from are revoked is
// accepted even when it is minted within the second of the revocation
// (IssuedAt is then up to a second or two ahead of the clock; Verify does
// not look at it). Expires is still now+ttl.
func (s *Signer) MintFrom(kind string, c Claims, from int64, ttl time.Duration) (string, error) {
	if kind == "" || c.Subject == "" {
		return "", fmt.Errorf("mint token: %w: kind and subject are required", ErrMalformed)
	}
	now := s.now()
	c.Kind = kind
	c.IssuedAt = max(now.Unix(), from)
	c.Expires = now.Add(ttl).Unix()
	if c.ID == "" {
		c.ID = RandomID(8)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(s.sign(p)), nil
}

// Verify checks token's signature, kind and expiry and returns its claims.
// Errors wrap ErrMalformed, ErrBadSignature, ErrExpired or ErrWrongKind.
func (s *Signer) Verify(kind, token string) (Claims, error) {
	var c Claims
	if len(token) == 0 || len(token) > MaxTokenLen {
		return c, fmt.Errorf("verify token: %w: length %d", ErrMalformed, len(token))
	}
	p, sig, ok := strings.Cut(token, ".")
	if !ok || !isBase64URL(p) || !isBase64URL(sig) {
		return c, fmt.Errorf("verify token: %w", ErrMalformed)
	}
	// Strict: a token has one spelling (the last character's unused bits
	// are zero); isBase64URL has already refused the line breaks base64
	// decoding would skip.
	got, err := b64.DecodeString(sig)
	if err != nil {
		return c, fmt.Errorf("verify token: %w: signature encoding", ErrMalformed)
	}
	if !hmac.Equal(got, s.sign(p)) {
		return c, fmt.Errorf("verify token: %w", ErrBadSignature)
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return c, fmt.Errorf("verify token: %w: payload encoding", ErrMalformed)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return Claims{}, fmt.Errorf("verify token: %w: payload json", ErrMalformed)
	}
	if c.Kind != kind {
		return Claims{}, fmt.Errorf("verify token: %w: have %q, want %q", ErrWrongKind, c.Kind, kind)
	}
	if c.Subject == "" {
		return Claims{}, fmt.Errorf("verify token: %w: no subject", ErrMalformed)
	}
	if s.now().Unix() >= c.Expires {
		return Claims{}, fmt.Errorf("verify token: %w", ErrExpired)
	}
	return c, nil
}

// b64 is the tokens' encoding: unpadded base64url, strictly decoded.
var b64 = base64.RawURLEncoding.Strict()

// isBase64URL reports whether s is non-empty and only of the unpadded
// base64url alphabet.
func isBase64URL(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func (s *Signer) sign(payload string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// RandomID returns n random bytes as lowercase hex.
func RandomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// NewUUID returns a random (version 4) UUID in its canonical form.
func NewUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// EqualSecret compares a presented shared secret (a fleet, backend or
// operator token) with the configured one in constant time. An empty
// configured secret never matches.
func EqualSecret(presented, configured string) bool {
	if configured == "" {
		return false
	}
	a := sha256.Sum256([]byte(presented))
	b := sha256.Sum256([]byte(configured))
	return hmac.Equal(a[:], b[:])
}
