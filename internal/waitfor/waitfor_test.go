package waitfor

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a Fatalf instead of ending the test.
type fakeT struct {
	testing.TB
	failed string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, a ...any) {
	f.failed = fmt.Sprintf(format, a...)
	panic(f)
}

func run(f func(*fakeT)) (msg string) {
	ft := &fakeT{}
	defer func() {
		if r := recover(); r != nil && r != any(ft) {
			panic(r)
		}
		msg = ft.failed
	}()
	f(ft)
	return ""
}

func TestCondWaitsForTheCondition(t *testing.T) {
	var n atomic.Int32
	go func() {
		for i := 0; i < 5; i++ {
			n.Add(1)
		}
	}()
	Cond(t, "five increments", func() bool { return n.Load() == 5 })
}

func TestWithinFailsWithWhat(t *testing.T) {
	msg := run(func(ft *fakeT) { Within(ft, 20*time.Millisecond, "the impossible", func() bool { return false }) })
	if msg != "the impossible: not within 20ms" {
		t.Fatalf("failure message %q", msg)
	}
}

func TestDeadlineFromEnvironment(t *testing.T) {
	t.Setenv("ARENA_TEST_WAIT", "50ms")
	if Deadline() != 50*time.Millisecond {
		t.Fatalf("Deadline = %v", Deadline())
	}
	msg := run(func(ft *fakeT) { Cond(ft, "never", func() bool { return false }) })
	if msg != "timed out after 50ms waiting for never" {
		t.Fatalf("failure message %q", msg)
	}
	t.Setenv("ARENA_TEST_WAIT", "nonsense")
	if Deadline() != Timeout {
		t.Fatalf("Deadline with a bad value = %v", Deadline())
	}
}

func TestRecvAndClosed(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if v := Recv(t, ch, "a value"); v != 7 {
		t.Fatalf("Recv = %d", v)
	}
	close(ch)
	Closed(t, ch, "the close")
	t.Setenv("ARENA_TEST_WAIT", "10ms")
	if msg := run(func(ft *fakeT) { Recv(ft, make(chan int), "a value") }); msg != "timed out after 10ms waiting for a value" {
		t.Fatalf("failure message %q", msg)
	}
	if msg := run(func(ft *fakeT) { Recv(ft, ch, "a value") }); msg != "waiting for a value: channel closed" {
		t.Fatalf("failure message %q", msg)
	}
}
