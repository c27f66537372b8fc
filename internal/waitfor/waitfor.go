// Package waitfor is the one way arena's tests wait: on a condition or an
// event, with a generous deadline that only guards against a hang. A test
// never sleeps for a fixed time to let something happen.
//
// The deadline is Timeout (30 s) unless the environment variable
// ARENA_TEST_WAIT (a Go duration, e.g. "2m") says otherwise: a slow or
// busy machine (the race detector on two cores) makes a test slower, never
// wrong.
package waitfor

import (
	"os"
	"testing"
	"time"
)

// Timeout is the default deadline of every wait.
const Timeout = 30 * time.Second

// Deadline returns how long a wait may last: ARENA_TEST_WAIT when it is a
// positive duration, else Timeout.
func Deadline() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("ARENA_TEST_WAIT")); err == nil && d > 0 {
		return d
	}
	return Timeout
}

// Cond waits until cond returns true, checking it at once and then every
// millisecond or so, backing off to every 25 ms. It fails t with what
// ("the room ends") when Deadline passes first. cond runs on the calling
// goroutine.
func Cond(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if !poll(Deadline(), cond) {
		t.Fatalf("timed out after %v waiting for %s", Deadline(), what)
	}
}

// Within is Cond with its own deadline d, for a test whose point is that
// something happens within a bound (a crashed process leaves the table
// within a second). Keep d generous: the bound is what the test asserts.
func Within(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(d, cond) {
		t.Fatalf("%s: not within %v", what, d)
	}
}

// Poll reports whether cond became true within d, without failing a test:
// for helpers that give up and report why themselves.
func Poll(d time.Duration, cond func() bool) bool { return poll(d, cond) }

func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	every := time.Millisecond
	for !cond() {
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		t := time.NewTimer(min(every, left))
		<-t.C
		every = min(every*2, 25*time.Millisecond)
	}
	return true
}

// Recv waits for a value from ch and returns it; it fails t with what when
// ch is closed or Deadline passes first.
func Recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	timer := time.NewTimer(Deadline())
	defer timer.Stop()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("waiting for %s: channel closed", what)
		}
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", Deadline(), what)
	}
	panic("unreachable")
}

// Closed waits until ch is closed (or yields a value); it fails t with
// what when Deadline passes first.
func Closed[T any](t testing.TB, ch <-chan T, what string) {
	t.Helper()
	timer := time.NewTimer(Deadline())
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", Deadline(), what)
	}
}
