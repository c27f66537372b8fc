package dispatcher

import (
	"testing"
	"time"
)

// TestLoginLimiterPerAddress: each address has its own bucket of 30 logins
// refilling at 5 a second; a forgotten address starts full again.
func TestLoginLimiterPerAddress(t *testing.T) {
	l := newIPLimiter(5, 30)
	now := time.Unix(1000, 0)
	for i := 0; i < 30; i++ {
		if !l.allow("10.0.0.1", now) {
			t.Fatalf("login %d of the burst refused", i)
		}
	}
	if l.allow("10.0.0.1", now) {
		t.Fatal("login past the burst allowed")
	}
	if !l.allow("10.0.0.2", now) {
		t.Fatal("another address shares the first one's bucket")
	}
	if !l.allow("10.0.0.1", now.Add(200*time.Millisecond)) || l.allow("10.0.0.1", now.Add(200*time.Millisecond)) {
		t.Fatal("not one login per 200 ms at 5 a second")
	}
	later := now.Add(2 * time.Minute)
	l.allow("10.0.0.3", later) // sweeps
	l.mu.Lock()
	n := len(l.addrs)
	l.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d addresses kept after two idle minutes, want 1", n)
	}
	for i := 0; i < 30; i++ {
		if !l.allow("10.0.0.1", later) {
			t.Fatalf("a returning address's login %d refused", i)
		}
	}
}
