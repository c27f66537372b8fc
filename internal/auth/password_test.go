package auth

import (
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("%q %v", h, err)
	}
	if ok, err := CheckPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password: %v %v", ok, err)
	}
	if ok, err := CheckPassword(h, "correct horsf"); ok || err != nil {
		t.Fatalf("wrong password: %v %v", ok, err)
	}
	if h2, _ := HashPassword("correct horse"); h2 == h {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for _, bad := range []string{"short", strings.Repeat("x", MaxPasswordLen+1)} {
		if _, err := HashPassword(bad); err != ErrBadPassword {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=0,t=2,p=1$AAAA$AAAA", "$bcrypt$x", h[:len(h)-4], "$argon2id$v=19$m=99999999,t=2,p=1$AAAA$" + strings.Repeat("A", 43)} {
		if ok, err := CheckPassword(bad, "correct horse"); ok || err == nil {
			t.Errorf("hash %q: %v %v", bad, ok, err)
		}
	}
	if CheckNoPassword("anything") {
		t.Fatal("CheckNoPassword said yes")
	}
	// The dummy hash is readable and costs what a real one does: the same
	// parameters.
	if _, err := CheckPassword(dummyHash, "anything"); err != nil {
		t.Fatalf("dummy hash: %v", err)
	}
	if strings.Split(dummyHash, "$")[3] != strings.Split(h, "$")[3] {
		t.Fatalf("dummy hash %s, parameters differ from %s", dummyHash, h)
	}
}
