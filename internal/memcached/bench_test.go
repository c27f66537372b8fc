package memcached

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/arena-game/arena/internal/memcached/mctest"
)

// BenchmarkGomemcache measures get and set through gomemcache (the client
// arena uses) against the embedded server and, in the same run, a real
// memcached (skipped without the binary). Run:
//
//	go test ./internal/memcached -run XXX -bench Gomemcache -benchtime 2s -count 3
//
// The ratio embedded/memcached is the figure to read: all run on the same
// machine as the client. "embedded" serves from the benchmark's own process
// (as for the dispatcher under `arena up`); "embedded-process" is the same
// server in a process of its own (as the fight, map and chat processes
// reach it), which is the like-for-like comparison with memcached.
func BenchmarkGomemcache(b *testing.B) {
	emb, err := Start(Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer emb.Close()
	servers := []struct{ name, addr string }{
		{"embedded", emb.Addr()},
		{"embedded-process", startProcessForBench(b)},
	}
	if real := startRealForBench(b); real != "" {
		servers = append(servers, struct{ name, addr string }{"memcached", real})
	}
	for _, size := range []int{100, 4096} {
		value := bytes.Repeat([]byte("v"), size)
		for _, srv := range servers {
			mc := memcache.New(srv.addr)
			mc.MaxIdleConns = 64
			mc.Timeout = 10 * time.Second // a loaded shared machine stalls for longer than the 500 ms default
			const keys = 1000
			for i := range keys {
				if err := mc.Set(&memcache.Item{Key: "bench" + strconv.Itoa(i), Value: value}); err != nil {
					b.Fatal(err)
				}
			}
			name := srv.name + "/" + strconv.Itoa(size) + "B"
			b.Run(name+"/get", func(b *testing.B) {
				b.SetBytes(int64(size))
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if _, err := mc.Get("bench" + strconv.Itoa(i%keys)); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
			b.Run(name+"/set", func(b *testing.B) {
				b.SetBytes(int64(size))
				b.RunParallel(func(pb *testing.PB) {
					i := 0
					for pb.Next() {
						if err := mc.Set(&memcache.Item{Key: "bench" + strconv.Itoa(i%keys), Value: value}); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			})
			multi := make([]string, 20)
			for i := range multi {
				multi[i] = "bench" + strconv.Itoa(i*7)
			}
			b.Run(name+"/getmulti20", func(b *testing.B) {
				b.SetBytes(int64(size) * 20)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if got, err := mc.GetMulti(multi); err != nil || len(got) != len(multi) {
							b.Error(len(got), err)
							return
						}
					}
				})
			})
			mc.Close()
		}
	}
}

// startRealForBench starts a real memcached for a benchmark, or returns ""
// when the binary is missing (the benchmark then measures the embedded
// server alone and says so).
func startRealForBench(b *testing.B) string {
	if !mctest.Available() {
		b.Log("memcached binary not found: measuring the embedded server alone")
		return ""
	}
	return mctest.Start(b, "-m", "64").Addr
}

// TestMain also lets the test binary be the embedded server in a process of
// its own, for BenchmarkGomemcache: with ARENA_MEMCACHED_SERVE=1 it serves
// on a free port, prints the address and stops when stdin closes.
func TestMain(m *testing.M) {
	if os.Getenv("ARENA_MEMCACHED_SERVE") == "1" {
		s, err := Start(Config{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(s.Addr())
		io.Copy(io.Discard, os.Stdin)
		s.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func startProcessForBench(b *testing.B) string {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "ARENA_MEMCACHED_SERVE=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("embedded server process: %v", err)
	}
	return strings.TrimSpace(line)
}
