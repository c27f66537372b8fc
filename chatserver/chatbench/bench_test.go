package chatbench

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	v := []float64{5, 1, 4, 2, 3}
	for p, want := range map[float64]float64{50: 3, 99: 5, 100: 5, 0: 1} {
		if got := percentile(v, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if percentile(nil, 50) != 0 {
		t.Error("empty")
	}
}

func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	if rss, err := readRSS(pid); err != nil || rss <= 0 {
		t.Fatalf("rss %d %v", rss, err)
	}
	if n, err := connCapacity(pid); err != nil || n <= 0 {
		t.Fatalf("capacity %d %v", n, err)
	}
	busy := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(busy) {
	}
	if cpuTime(pid) <= 0 {
		t.Fatal("no cpu time")
	}
}

// TestWorkerAgainstBaseline drives a worker in-process over pipes against
// an in-process baseline server.
func TestWorkerAgainstBaseline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port, _ := freePort()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	go func() { _ = ServeBaseline(ctx, addr) }()
	if err := waitHealthy(ctx, addr, nil); err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- RunWorker(ctx, inR, outW) }()
	enc := json.NewEncoder(inW)
	dec := json.NewDecoder(bufio.NewReader(outR))
	recv := func() workerOut {
		t.Helper()
		var o workerOut
		if err := dec.Decode(&o); err != nil || o.Error != "" {
			t.Fatalf("worker: %v %s", err, o.Error)
		}
		return o
	}
	_ = enc.Encode(workerIn{Setup: &workerSetup{Addr: addr, Count: 50, Sources: []string{"127.0.0.1", "127.0.0.2"}, Concurrency: 8}})
	if !recv().Ready {
		t.Fatal("not ready")
	}
	ph := &handler{idx: -1}
	poster, err := dialOne(ctx, "ws://"+addr+"/ws", addr, nil, ph)
	if err != nil {
		t.Fatal(err)
	}
	defer poster.NetConn().Close()
	for rep := 0; rep < 2; rep++ {
		marker := "m" + strconv.Itoa(rep)
		_ = enc.Encode(workerIn{Arm: marker})
		if !recv().Armed {
			t.Fatal("not armed")
		}
		if err := baselineTarget.post(poster, marker); err != nil {
			t.Fatal(err)
		}
		if o := recv(); len(o.Arrivals) != 50 {
			t.Fatalf("repeat %d: %d arrivals", rep, len(o.Arrivals))
		}
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRunSmall runs the whole benchmark with the real binary at a small
// scale: a chat child, worker children and the baseline.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the arena binary")
	}
	exe := filepath.Join(t.TempDir(), "arena")
	if out, err := exec.Command("go", "build", "-o", exe, "../../cmd/arena").CombinedOutput(); err != nil {
		if strings.Contains(string(out), "chat") {
			t.Fatalf("build arena: %v\n%s", err, out)
		}
		t.Skipf("the arena binary does not build (outside the chat server): %v\n%s", err, out)
	}
	res, err := Run(context.Background(), Config{Clients: 300, Repeats: 3, Exe: exe, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.Clients != 300 || res.Chat.Incomplete != 0 || res.Baseline == nil || res.Baseline.Incomplete != 0 ||
		res.Chat.LastP50Ms <= 0 || res.Baseline.LastP50Ms <= 0 || res.Chat.RSSAfter <= res.Chat.RSSBefore || res.Ratio == nil {
		b, _ := json.Marshal(res)
		t.Fatalf("result %s", b)
	}
}
