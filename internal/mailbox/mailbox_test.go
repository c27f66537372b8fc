package mailbox

import (
	"errors"
	"slices"
	"sync"
	"testing"
)

func TestPolicyWhenFull(t *testing.T) {
	tests := []struct {
		name     string
		policy   Policy
		capacity int
		posts    []int
		wantErrs []error
		want     []int
		dropped  uint64
		rejected uint64
	}{
		{"reject keeps the oldest", Reject, 2, []int{1, 2, 3}, []error{nil, nil, ErrFull}, []int{1, 2}, 0, 1},
		{"drop-oldest keeps the newest", DropOldest, 2, []int{1, 2, 3, 4}, []error{nil, nil, nil, nil}, []int{3, 4}, 2, 0},
		{"capacity 1 coalesces to the latest", DropOldest, 1, []int{1, 2, 3}, []error{nil, nil, nil}, []int{3}, 2, 0},
		{"capacity 0 means 1", Reject, 0, []int{1, 2}, []error{nil, ErrFull}, []int{1}, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New[int](tc.capacity, tc.policy)
			for i, v := range tc.posts {
				if err := m.Post(v); !errors.Is(err, tc.wantErrs[i]) {
					t.Fatalf("Post(%d) = %v, want %v", v, err, tc.wantErrs[i])
				}
			}
			if got := m.Take(nil); !slices.Equal(got, tc.want) {
				t.Fatalf("Take = %v, want %v", got, tc.want)
			}
			if m.Dropped() != tc.dropped || m.Rejected() != tc.rejected {
				t.Fatalf("dropped %d rejected %d, want %d %d", m.Dropped(), m.Rejected(), tc.dropped, tc.rejected)
			}
			if m.Len() != 0 {
				t.Fatalf("Len after Take = %d", m.Len())
			}
		})
	}
}

func TestTakeEmptiesAndFreesRoom(t *testing.T) {
	m := New[int](3, Reject)
	var buf []int
	for round := 0; round < 5; round++ {
		for i := 0; i < 3; i++ {
			if err := m.Post(round*10 + i); err != nil {
				t.Fatalf("round %d post %d: %v", round, i, err)
			}
		}
		if err := m.Post(99); !errors.Is(err, ErrFull) {
			t.Fatalf("round %d: fourth post = %v, want ErrFull", round, err)
		}
		buf = m.Take(buf)
		if want := []int{round * 10, round*10 + 1, round*10 + 2}; !slices.Equal(buf, want) {
			t.Fatalf("round %d: Take = %v, want %v", round, buf, want)
		}
	}
}

func TestDropOldestStaysBounded(t *testing.T) {
	m := New[int](4, DropOldest)
	for i := 0; i < 10000; i++ {
		_ = m.Post(i)
		if m.Len() > 4 {
			t.Fatalf("Len %d over capacity", m.Len())
		}
	}
	m.mu.Lock()
	c := cap(m.q)
	m.mu.Unlock()
	if c > 16 {
		t.Fatalf("storage grew to %d slots for capacity 4", c)
	}
	if got := m.Take(nil); !slices.Equal(got, []int{9996, 9997, 9998, 9999}) {
		t.Fatalf("Take = %v", got)
	}
}

func TestReadySignalsAndQuiet(t *testing.T) {
	m := New[int](4, Reject)
	_ = m.Post(1)
	select {
	case <-m.Ready():
	default:
		t.Fatal("Ready did not fire after Post")
	}
	q := New[int](4, Reject, Quiet())
	_ = q.Post(1)
	_ = q.Reserve().Post(2)
	select {
	case <-q.Ready():
		t.Fatal("a Quiet mailbox's Ready fired on Post")
	default:
	}
	q.Wake()
	select {
	case <-q.Ready():
	default:
		t.Fatal("Ready did not fire after Wake")
	}
	if got := q.Take(nil); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Take = %v", got)
	}
}

func TestReservationPostsWhenFull(t *testing.T) {
	m := New[string](1, Reject)
	leave := m.Reserve()
	if err := m.Post("join"); err != nil {
		t.Fatal(err)
	}
	if err := m.Post("other"); !errors.Is(err, ErrFull) {
		t.Fatalf("Post on full = %v", err)
	}
	if err := leave.Post("leave"); err != nil {
		t.Fatalf("reserved Post on full = %v", err)
	}
	if err := leave.Post("again"); !errors.Is(err, ErrUsed) {
		t.Fatalf("second reserved Post = %v, want ErrUsed", err)
	}
	// A reserved message does not take the room of an ordinary one.
	if err := m.Post("other"); !errors.Is(err, ErrFull) {
		t.Fatalf("Post = %v, want ErrFull (capacity 1, one ordinary message queued)", err)
	}
	if got := m.Take(nil); !slices.Equal(got, []string{"join", "leave"}) {
		t.Fatalf("Take = %v", got)
	}
	if err := m.Post("next"); err != nil {
		t.Fatalf("Post after Take = %v", err)
	}
}

func TestReserveOnDropOldestPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Reserve on a DropOldest mailbox did not panic")
		}
	}()
	New[int](1, DropOldest).Reserve()
}

func TestClosedNeverBlocks(t *testing.T) {
	m := New[int](2, Reject)
	r := m.Reserve()
	_ = m.Post(1)
	_ = m.Post(2)
	if rest := m.Close(); !slices.Equal(rest, []int{1, 2}) {
		t.Fatalf("Close returned %v", rest)
	}
	if rest := m.Close(); rest != nil {
		t.Fatalf("second Close returned %v", rest)
	}
	if !m.Closed() {
		t.Fatal("Closed = false")
	}
	if err := m.Post(3); !errors.Is(err, ErrClosed) {
		t.Fatalf("Post after Close = %v", err)
	}
	if err := r.Post(3); !errors.Is(err, ErrClosed) {
		t.Fatalf("reserved Post after Close = %v", err)
	}
	dm := New[int](1, DropOldest)
	dm.Close()
	if err := dm.Post(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("DropOldest Post after Close = %v", err)
	}
}

// TestConcurrentPostersKeepOrder checks, under the race detector, that
// each sender's accepted messages arrive in the order it posted them and
// that every accepted message arrives exactly once.
func TestConcurrentPostersKeepOrder(t *testing.T) {
	const senders, per = 8, 5000
	m := New[[2]int](64, Reject)
	var wg sync.WaitGroup
	accepted := make([]int, senders)
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if m.Post([2]int{s, i}) == nil {
					accepted[s]++
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	last := make([]int, senders)
	for i := range last {
		last[i] = -1
	}
	got := make([]int, senders)
	var buf [][2]int
	check := func() {
		buf = m.Take(buf)
		for _, v := range buf {
			if v[1] <= last[v[0]] {
				t.Fatalf("sender %d: message %d after %d", v[0], v[1], last[v[0]])
			}
			last[v[0]] = v[1]
			got[v[0]]++
		}
	}
	for running := true; running; {
		select {
		case <-m.Ready():
			check()
		case <-done:
			running = false
		}
	}
	check()
	if !slices.Equal(got, accepted) {
		t.Fatalf("received %v, accepted %v", got, accepted)
	}
}

func TestTakeReusesStorage(t *testing.T) {
	m := New[int](128, Reject)
	var buf []int
	allocs := testing.AllocsPerRun(100, func() {
		for i := 0; i < 100; i++ {
			_ = m.Post(i)
		}
		buf = m.Take(buf)
	})
	if allocs > 0 {
		t.Fatalf("%v allocations per round of 100 posts and a Take", allocs)
	}
}

func BenchmarkPostTake(b *testing.B) {
	m := New[int](4096, Reject)
	var buf []int
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = m.Post(i)
		if i%64 == 63 {
			buf = m.Take(buf)
		}
	}
}

// BenchmarkChannel is the buffered channel a Mailbox replaces, for
// comparison.
func BenchmarkChannel(b *testing.B) {
	ch := make(chan int, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ch <- i
		if i%64 == 63 {
			for range 64 {
				<-ch
			}
		}
	}
}
