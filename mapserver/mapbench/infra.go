package mapbench

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/arena-game/arena/internal/auth"
	"github.com/arena-game/arena/internal/store"
)

// infraInfo is what the infrastructure process announces.
type infraInfo struct {
	Memcache   []string `json:"memcache"`
	Dispatcher string   `json:"dispatcher"`
	Token      string   `json:"token"`
}

// ServeInfra runs the bench's shared infrastructure in this process, for a
// bench running in another (so that the load generator's busy scheduler
// does not delay memcached and the dispatcher stand-in): a memcached
// (memcachedBin if set, else the embedded one) and the line-protocol
// responder. It prints one JSON line {"memcache","dispatcher","token"} on
// out, then applies "place MAPID PORT" lines read from in, and returns
// when in closes.
func ServeInfra(in io.Reader, out io.Writer, memcachedBin string) error {
	addrs, stop, err := startMemcached(memcachedBin)
	if err != nil {
		return err
	}
	defer stop()
	token := auth.RandomID(16)
	resp, err := startResponder(token)
	if err != nil {
		return fmt.Errorf("bench map infra: %w", err)
	}
	defer resp.close()
	if err := json.NewEncoder(out).Encode(infraInfo{Memcache: addrs, Dispatcher: resp.addr(), Token: token}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "place" {
			if p, err := strconv.Atoi(f[2]); err == nil {
				resp.place(f[1], p)
			}
		}
	}
	return nil
}

// startMemcached starts memcachedBin on a free loopback port, or the
// embedded memcached when memcachedBin is empty.
func startMemcached(memcachedBin string) ([]string, func(), error) {
	if memcachedBin == "" {
		emb, err := store.StartEmbedded(0)
		if err != nil {
			return nil, nil, fmt.Errorf("bench map: %w", err)
		}
		return []string{emb.Addr()}, emb.Close, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-t", "2", "-c", "8192", "-m", "256"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "root")
	}
	cmd := exec.Command(memcachedBin, args...)
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("bench map: start %s: %w", memcachedBin, err)
	}
	stop := func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return []string{addr}, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("bench map: %s did not listen on %s", memcachedBin, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// infraProc is the infrastructure child of a bench.
type infraProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	info  infraInfo
}

func startInfraProc(command []string) (*infraProc, error) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench map: start infrastructure process: %w", err)
	}
	p := &infraProc{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(stdout).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &p.info)
	}
	if err == nil && (len(p.info.Memcache) == 0 || p.info.Dispatcher == "") {
		err = errors.New("incomplete announcement")
	}
	if err != nil {
		p.close()
		return nil, fmt.Errorf("bench map: infrastructure process: %w", err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return p, nil
}

func (p *infraProc) place(mapID string, port int) {
	fmt.Fprintf(p.stdin, "place %s %d\n", mapID, port)
}

func (p *infraProc) close() {
	_ = p.stdin.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}
