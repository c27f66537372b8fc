// Package integration runs real arena processes (the built binary, its
// go-plugin children, a real memcached-protocol server) and talks to them
// over sockets, as clients and operators do.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/arena-game/arena/internal/benchdisp"
	"github.com/arena-game/arena/internal/lineproto/linetest"
	"github.com/arena-game/arena/internal/store/storetest"
	"github.com/arena-game/arena/internal/waitfor"
)

var arenaBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arena-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	arenaBin = filepath.Join(dir, "arena")
	build := exec.Command("go", "build", "-o", arenaBin, "../cmd/arena")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build arena:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a port that was free a moment ago, below the kernel's
// ephemeral range (benchdisp.FreePort): a dispatcher a test restarts after
// kill -9 binds the same ports again, and a port from the ephemeral range
// may meanwhile be the local end of another test's outgoing connection.
// It never hands out the same port twice in one test run.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		port := benchdisp.FreePort()
		if port == 0 {
			t.Fatal("no free port")
		}
		handedMu.Lock()
		seen := handed[port]
		handed[port] = true
		handedMu.Unlock()
		if !seen {
			return port
		}
	}
}

var (
	handedMu sync.Mutex
	handed   = map[int]bool{}
)

// portBlock returns the first of n consecutive ports that are free now,
// below the kernel's ephemeral range (32768 and up) for the reason
// freePort gives: fleet processes respawn on these ports.
func portBlock(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		base := 20000 + (os.Getpid()*7+try*131+int(time.Now().UnixNano()%9973))%(32768-20000-n)
		ok := true
		for p := base; p < base+n; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				ok = false
				break
			}
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port block")
	return 0
}

// Arena is a running `arena` process under test.
type Arena struct {
	t        *testing.T
	cmd      *exec.Cmd
	Line     string // line protocol host:port
	HTTP     string // host:port of HTTP
	GRPC     string // host:port of gRPC Match
	Token    string // fleet token
	Secret   string
	Operator string
	Backend  string
	Memcache string
	Prefix   string
	Args     []string // the command line after the binary
	DB       string   // player database DSN
	Outbox   string   // results outbox directory
	log      *lockedBuffer
	done     chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startArena runs `arena SUBCOMMAND` with the flags a test gives plus
// free addresses, a shared test memcached and fresh tokens, and waits until
// its line protocol and HTTP answer. A port picked as free can be taken by
// another test process before arena binds it: such a start is retried
// with new addresses, up to three times.
func startArena(t *testing.T, sub string, extra ...string) *Arena {
	t.Helper()
	return startArenaWith(t, startOpts{}, sub, extra...)
}

// startOpts change how startArenaWith runs arena.
type startOpts struct {
	// noFile, when set, is arena's open-file limit (soft and hard), set
	// with prlimit(1).
	noFile int
}

// startArenaWith is startArena with options.
func startArenaWith(t *testing.T, o startOpts, sub string, extra ...string) *Arena {
	t.Helper()
	for attempt := 1; ; attempt++ {
		a, portTaken := tryStartArena(t, o, sub, extra)
		if a != nil {
			return a
		}
		if !portTaken || attempt == 3 {
			t.Fatal("arena did not start")
		}
	}
}

// tryStartArena is one attempt of startArena. It returns nil and whether a
// listen address was taken when the process exits early; other failures
// end the test.
func tryStartArena(t *testing.T, o startOpts, sub string, extra []string) (*Arena, bool) {
	t.Helper()
	a := &Arena{
		t:        t,
		Line:     "127.0.0.1:" + strconv.Itoa(freePort(t)),
		HTTP:     "127.0.0.1:" + strconv.Itoa(freePort(t)),
		GRPC:     "127.0.0.1:" + strconv.Itoa(freePort(t)),
		Token:    "fleet-" + strconv.Itoa(os.Getpid()),
		Secret:   "secret-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		Operator: "op-token",
		Backend:  "backend-token",
		Memcache: strings.Join(storetest.Addrs(t), ","),
		Prefix:   fmt.Sprintf("it%d.%d:", os.Getpid(), time.Now().UnixNano()%1e9),
		DB:       flagValue(extra, "--db"),
		Outbox:   flagValue(extra, "--outbox"),
		log:      &lockedBuffer{},
		done:     make(chan struct{}),
	}
	args := []string{sub,
		"--listen", a.Line, "--http", a.HTTP, "--grpc", a.GRPC,
		"--memcache", a.Memcache, "--store-prefix", a.Prefix,
		"--fight-port-base", strconv.Itoa(portBlock(t, 20)), "--map-port-base", strconv.Itoa(portBlock(t, 20)), "--port-span", "20",
		"--host-listen", "127.0.0.1:" + strconv.Itoa(freePort(t)),
		"--log-level", "debug",
	}
	if sub == "dispatcher" && !slices.ContainsFunc(extra, func(a string) bool { return strings.HasPrefix(a, "--local-host") }) {
		args = append(args, "--local-host")
	}
	creds := flagValue(extra, "--credentials")
	// With --rotate-credentials the file still holds the old secret until
	// arena writes the new one, after it listens.
	var staleSecret string
	if creds != "" && slices.Contains(extra, "--rotate-credentials") {
		var m map[string]string
		if b, err := os.ReadFile(creds); err == nil && json.Unmarshal(b, &m) == nil {
			staleSecret = m["secret"]
		}
	}
	if creds == "" {
		for _, f := range []struct{ flag, v string }{{"--fleet-token", a.Token}, {"--secret", a.Secret}, {"--operator-token", a.Operator}, {"--backend-token", a.Backend}} {
			if flagValue(extra, f.flag+"-file") == "" {
				args = append(args, f.flag, f.v)
			}
		}
	}
	if a.DB == "" && flagValue(extra, "--db-file") == "" {
		a.DB = "sqlite:" + filepath.Join(t.TempDir(), "arena.db")
		args = append(args, "--db", a.DB)
	}
	if a.Outbox == "" {
		a.Outbox = t.TempDir()
		args = append(args, "--outbox", a.Outbox)
	}
	args = append(args, extra...)
	a.Args = args
	if o.noFile > 0 {
		n := strconv.Itoa(o.noFile)
		a.cmd = exec.Command("prlimit", append([]string{"--nofile=" + n + ":" + n, arenaBin}, args...)...)
	} else {
		a.cmd = exec.Command(arenaBin, args...)
	}
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	exited := false
	up := waitfor.Poll(waitfor.Deadline(), func() bool {
		select {
		case <-a.done:
			exited = true
			return true
		default:
		}
		resp, err := http.Get("http://" + a.HTTP + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		c, err := net.Dial("tcp", a.Line)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	switch {
	case exited:
		log := a.log.String()
		if strings.Contains(log, "address already in use") {
			t.Logf("arena could not bind a picked port; retrying:\n%s", log)
			return nil, true
		}
		t.Fatalf("arena exited early:\n%s", log)
	case !up:
		a.Stop()
		t.Fatalf("arena did not come up:\n%s", a.log.String())
	}
	if creds != "" {
		// arena up generated (or reused) the tokens: read them back.
		waitfor.Cond(t, "arena up writes "+creds, func() bool {
			var m map[string]string
			b, err := os.ReadFile(creds)
			if err != nil || json.Unmarshal(b, &m) != nil {
				return false
			}
			a.Secret, a.Token, a.Operator, a.Backend = m["secret"], m["fleet_token"], m["operator_token"], m["backend_token"]
			return a.Secret != "" && a.Secret != staleSecret
		})
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("arena log:\n%s", a.log.String())
		}
	})
	return a, false
}

// flagValue returns the value following flag in args, or "".
func flagValue(args []string, flag string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == flag {
			return args[i+1]
		}
	}
	return ""
}

// Stop sends SIGTERM and waits for the process (SIGKILL after 20s).
func (a *Arena) Stop() {
	if a.cmd.Process == nil {
		return
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// seed sends req the seed's way (no newline) and reads the answer until the
// server closes.
func seed(t *testing.T, addr, req string) string { t.Helper(); return linetest.Seed(t, addr, req) }

// dialLine opens a newline-mode client.
func dialLine(t *testing.T, addr string) *linetest.Conn { t.Helper(); return linetest.Dial(t, addr) }

// listening reports whether something accepts TCP on 127.0.0.1:port.
func listening(port string) bool {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// alive reports whether pid exists (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
