package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testSecret = "test-cluster-secret"

var t0 = time.Unix(1_700_000_000, 0)

func fixedSigner(t testing.TB, secret string, now time.Time) *Signer {
	t.Helper()
	s, err := NewSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s.WithClock(func() time.Time { return now })
}

// signRaw signs an arbitrary payload part the way Mint does, so tests can
// make validly signed tokens whose payload is not what Mint would write.
func signRaw(secret, payloadPart string) string {
	k := hmac.New(sha256.New, []byte(secret))
	k.Write([]byte("arena token key v1"))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(payloadPart))
	return payloadPart + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func signClaims(secret string, claims any) string {
	b, _ := json.Marshal(claims)
	return signRaw(secret, base64.RawURLEncoding.EncodeToString(b))
}

// TestTokenFormat pins the documented format (docs/PROTOCOL.md, "Tokens"):
// a token minted by an account service from the spec verifies, and one
// minted here has the spec's shape.
func TestTokenFormat(t *testing.T) {
	s := fixedSigner(t, testSecret, t0)
	external := signClaims(testSecret, map[string]any{"k": "player", "sub": "u1", "name": "Ann", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()})
	c, err := s.Verify(KindPlayer, external)
	if err != nil || c.Subject != "u1" || c.Name != "Ann" {
		t.Fatalf("a token made from the spec: %+v, %v", c, err)
	}
	tok, err := s.Mint(KindRoom, Claims{Subject: "u1", Room: "r1"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$`).MatchString(tok) {
		t.Fatalf("minted token %q is not two unpadded base64url parts with a 32-byte signature", tok)
	}
	p, _, _ := strings.Cut(tok, ".")
	if signRaw(testSecret, p) != tok {
		t.Fatal("the signature is not HMAC-SHA256(HMAC-SHA256(secret, \"arena token key v1\"), payload part)")
	}
	raw, _ := base64.RawURLEncoding.DecodeString(p)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k", "sub", "room", "iat", "exp", "jti"} {
		if _, ok := m[k]; !ok {
			t.Errorf("claims %s lack %q", raw, k)
		}
	}
}

func TestVerify(t *testing.T) {
	s := fixedSigner(t, testSecret, t0)
	mint := func(kind string, c Claims, ttl time.Duration) string {
		tok, err := s.Mint(kind, c, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(KindPlayer, Claims{Subject: "u1", Name: "Ann"}, time.Hour)
	p, sig, _ := strings.Cut(good, ".")
	other := fixedSigner(t, "another-secret", t0)
	forged, _ := other.Mint(KindPlayer, Claims{Subject: "u1"}, time.Hour)
	tampered := base64.RawURLEncoding.EncodeToString([]byte(`{"k":"player","sub":"admin","exp":9999999999}`)) + "." + sig
	// The last character of a 32-byte signature carries 4 bits and 2
	// bits of padding: another letter with the same 4 bits decodes to the
	// same bytes unless decoding is strict.
	last := sig[len(sig)-1]
	variant := byte(0)
	for _, c := range []byte(base64URLAlphabet) {
		if c != last && strings.IndexByte(base64URLAlphabet, c)>>2 == strings.IndexByte(base64URLAlphabet, last)>>2 {
			variant = c
			break
		}
	}
	malleable := p + "." + sig[:len(sig)-1] + string(variant)

	tests := []struct {
		name    string
		kind    string
		token   string
		wantErr error
		subject string
	}{
		{"valid", KindPlayer, good, nil, "u1"},
		{"empty", KindPlayer, "", ErrMalformed, ""},
		{"too long", KindPlayer, strings.Repeat("a", MaxTokenLen) + "." + sig, ErrMalformed, ""},
		{"no dot", KindPlayer, p + sig, ErrMalformed, ""},
		{"two dots", KindPlayer, good + ".x", ErrMalformed, ""},
		{"empty payload", KindPlayer, "." + sig, ErrMalformed, ""},
		{"empty signature", KindPlayer, p + ".", ErrMalformed, ""},
		{"signature not base64url", KindPlayer, p + ".***", ErrMalformed, ""},
		{"padded signature", KindPlayer, p + "." + sig + "=", ErrMalformed, ""},
		{"signature spelled another way", KindPlayer, malleable, ErrMalformed, ""},
		{"other secret", KindPlayer, forged, ErrBadSignature, ""},
		{"tampered payload", KindPlayer, tampered, ErrBadSignature, ""},
		{"truncated signature", KindPlayer, p + "." + sig[:20], ErrBadSignature, ""},
		{"signed payload not base64url", KindPlayer, signRaw(testSecret, "!!!"), ErrMalformed, ""},
		{"signed payload not JSON", KindPlayer, signRaw(testSecret, base64.RawURLEncoding.EncodeToString([]byte("not json"))), ErrMalformed, ""},
		{"signed payload JSON null", KindPlayer, signRaw(testSecret, base64.RawURLEncoding.EncodeToString([]byte("null"))), ErrWrongKind, ""},
		{"claims of the wrong type", KindPlayer, signClaims(testSecret, map[string]any{"k": "player", "sub": 7, "exp": t0.Unix() + 60}), ErrMalformed, ""},
		{"no subject", KindPlayer, signClaims(testSecret, map[string]any{"k": "player", "exp": t0.Unix() + 60}), ErrMalformed, ""},
		{"no expiry", KindPlayer, signClaims(testSecret, map[string]any{"k": "player", "sub": "u1"}), ErrExpired, ""},
		{"room token as a login", KindPlayer, mint(KindRoom, Claims{Subject: "u1", Room: "r"}, time.Hour), ErrWrongKind, ""},
		{"login as a map ticket", KindMap, good, ErrWrongKind, ""},
		{"expires now", KindPlayer, mint(KindPlayer, Claims{Subject: "u1"}, 0), ErrExpired, ""},
		{"expired", KindPlayer, mint(KindPlayer, Claims{Subject: "u1"}, -time.Minute), ErrExpired, ""},
		{"one second left", KindPlayer, mint(KindPlayer, Claims{Subject: "u2"}, time.Second), nil, "u2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.Verify(tc.kind, tc.token)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %+v, %v; want %v", c, err, tc.wantErr)
			}
			if err != nil && c != (Claims{}) {
				t.Fatalf("claims %+v returned with error %v", c, err)
			}
			if c.Subject != tc.subject {
				t.Fatalf("subject %q, want %q", c.Subject, tc.subject)
			}
		})
	}
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestMintAndSecrets(t *testing.T) {
	if _, err := NewSigner(""); !errors.Is(err, ErrNoSecret) {
		t.Fatalf("NewSigner(\"\") = %v", err)
	}
	s := fixedSigner(t, testSecret, t0)
	for _, tc := range []struct{ kind, sub string }{{"", "u"}, {KindPlayer, ""}} {
		if _, err := s.Mint(tc.kind, Claims{Subject: tc.sub}, time.Minute); !errors.Is(err, ErrMalformed) {
			t.Errorf("Mint(%q, sub %q) = %v, want ErrMalformed", tc.kind, tc.sub, err)
		}
	}
	a, _ := s.Mint(KindPlayer, Claims{Subject: "u"}, time.Minute)
	b, _ := s.Mint(KindPlayer, Claims{Subject: "u"}, time.Minute)
	if a == b {
		t.Fatal("two tokens minted alike: no random id")
	}
	c, _ := s.Verify(KindPlayer, a)
	if c.IssuedAt != t0.Unix() || c.Expires != t0.Add(time.Minute).Unix() || len(c.ID) != 16 {
		t.Fatalf("claims %+v", c)
	}
	for _, tc := range []struct {
		presented, configured string
		want                  bool
	}{
		{"op", "op", true},
		{"op", "po", false},
		{"", "", false}, // an unset secret never matches
		{"x", "", false},
		{"op ", "op", false},
	} {
		if got := EqualSecret(tc.presented, tc.configured); got != tc.want {
			t.Errorf("EqualSecret(%q, %q) = %v", tc.presented, tc.configured, got)
		}
	}
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	for range 100 {
		if u := NewUUID(); !uuid.MatchString(u) {
			t.Fatalf("NewUUID() = %q", u)
		}
	}
}

// FuzzVerify: no input makes Verify panic, and a token it accepts is
// exactly the one Mint would make from its payload part (no other
// spelling of a valid token passes), of the asked kind, with a subject,
// unexpired. Seeds in testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	s := fixedSigner(f, testSecret, t0)
	good, _ := s.Mint(KindPlayer, Claims{Subject: "u1", Name: "Ann"}, time.Hour)
	f.Add(good)
	f.Add(signRaw(testSecret, base64.RawURLEncoding.EncodeToString([]byte(`{"k":"player","sub":"u","exp":1800000000}`))))
	f.Add("a.b")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		c, err := s.Verify(KindPlayer, token)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrWrongKind) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		p, _, _ := strings.Cut(token, ".")
		if signRaw(testSecret, p) != token {
			t.Fatalf("accepted %q, which is not the canonical token %q", token, signRaw(testSecret, p))
		}
		if c.Kind != KindPlayer || c.Subject == "" || c.Expires <= t0.Unix() {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}
