package dispatcher

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/arena-game/arena/internal/waitfor"
	"github.com/arena-game/arena/matchmaking"
	"github.com/arena-game/arena/proto/matchthrift"
)

// seedPython finds a python3 that imports Debian's python3-thrift and the
// thrift compiler; in CI both must be there (.ci/run installs them).
func seedPython(t *testing.T) (python, compiler string) {
	t.Helper()
	compiler, _ = exec.LookPath("thrift")
	python = findPython(t, "thrift")
	if compiler == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI needs thrift-compiler (.ci/run installs it)")
		}
		t.Skip("thrift-compiler not installed")
	}
	return python, compiler
}

// The seed's own Python client (Thrift's generated code, called as the
// seed's Django app calls it) adds players over --thrift; they are
// matched by the seed's rule into one room, usernames of 150 characters
// included.
func TestSeedThriftClientUnchanged(t *testing.T) {
	python, compiler := seedPython(t)
	td := newTestDispatcher(t, func(c *Config) { c.Thrift = "127.0.0.1:0" })
	// Generate the client as the seed did: thrift --gen py match.thrift;
	// mv gen-py match_server.
	dir := t.TempDir()
	idl, _ := filepath.Abs("../proto/thrift/match.thrift")
	if out, err := exec.Command(compiler, "--gen", "py", "-out", dir, idl).CombinedOutput(); err != nil {
		t.Fatalf("thrift --gen py: %v\n%s", err, out)
	}
	pkg := filepath.Join(dir, "match_server")
	if err := os.Mkdir(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "match_service"), filepath.Join(pkg, "match_service")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkg, "__init__.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs("testdata/seed_client.py")
	long := strings.Repeat("n", matchmakingSeedName-1) + "1"
	players := fmt.Sprintf("1500\tseed-a\t%s\thttps://x.test/a.png\tchan-a\n", long) +
		"1500\tseed-b\tbob\t\tchan-b\n" +
		"1500\tseed-c\tcid\t\tchan-c\n" +
		"-7\tseed-d\tdan\t\tchan-d\n" + // a refused score: a clear error
		fmt.Sprintf("1500\tseed-e\t%s\t\tchan-e\n", long+"x") // 151 characters: refused
	cmd := exec.Command(python, script, td.ThriftAddr())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir)
	cmd.Stdin = strings.NewReader(players)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the seed's client: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 5 || lines[0] != "0" || lines[1] != "0" || lines[2] != "0" ||
		!strings.Contains(lines[3], "bad_ticket") || !strings.Contains(lines[4], "bad_ticket") {
		t.Fatalf("add_player answers:\n%s", out)
	}
	// The three are matched into one room, readable as backend tickets.
	var room string
	for _, id := range []string{"seed-a", "seed-b", "seed-c"} {
		var ts TicketStatus
		waitfor.Cond(t, id+" matched", func() bool {
			ts = TicketStatus{}
			return td.call(t, "GET", "/v1/tickets/"+id, tBackend, nil, &ts) == 200 && ts.Assignment != nil
		})
		var m matchmaking.MatchMsg
		if err := json.Unmarshal(ts.Assignment, &m); err != nil {
			t.Fatal(err)
		}
		if room == "" {
			room = m.Room
		}
		if m.Room != room || len(m.Players) != 3 || m.Channel != "chan-"+id[len(id)-1:] {
			t.Fatalf("%s: %+v", id, m)
		}
		if id == "seed-a" && m.Players[0].Username != long && m.Players[1].Username != long && m.Players[2].Username != long {
			t.Fatalf("the 150-character username did not survive: %+v", m.Players)
		}
	}
}

const matchmakingSeedName = SeedUsernameMax

// Truncated and huge Thrift messages close their connection; an unknown
// method gets Thrift's UNKNOWN_METHOD; the intake keeps serving others.
func TestThriftBadInput(t *testing.T) {
	td := newTestDispatcher(t, func(c *Config) { c.Thrift = "127.0.0.1:0"; c.Match.Tick = time.Hour })
	addr := td.ThriftAddr()
	closedSoon := func(name string, payload []byte) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = c.Write(payload)
		if tc, ok := c.(*net.TCPConn); ok && name == "truncated" {
			_ = tc.CloseWrite()
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: the connection stayed open (%d bytes read)", name, n)
		}
	}
	// A call header, then the connection ends halfway through a field.
	var trunc bytes.Buffer
	trunc.Write([]byte{0x80, 0x01, 0x00, 0x01}) // strict version, CALL
	binary.Write(&trunc, binary.BigEndian, int32(len("add_player")))
	trunc.WriteString("add_player")
	binary.Write(&trunc, binary.BigEndian, int32(1))
	trunc.Write([]byte{0x08, 0x00, 0x01, 0x00}) // i32 field 1, two bytes short
	closedSoon("truncated", trunc.Bytes())
	// A string announcing a gigabyte.
	var huge bytes.Buffer
	huge.Write([]byte{0x80, 0x01, 0x00, 0x01})
	binary.Write(&huge, binary.BigEndian, int32(len("add_player")))
	huge.WriteString("add_player")
	binary.Write(&huge, binary.BigEndian, int32(1))
	huge.Write([]byte{0x0b, 0x00, 0x02})
	binary.Write(&huge, binary.BigEndian, int32(1<<30))
	huge.WriteString("aaaa")
	closedSoon("huge", huge.Bytes())
	// A method name announcing a gigabyte.
	var hugeName bytes.Buffer
	hugeName.Write([]byte{0x80, 0x01, 0x00, 0x01})
	binary.Write(&hugeName, binary.BigEndian, int32(1<<30))
	closedSoon("huge name", hugeName.Bytes())

	// An unknown method: a clean UNKNOWN_METHOD exception, and the same
	// connection then serves add_player.
	conf := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 5 * time.Second}
	sock := thrift.NewTSocketConf(addr, conf)
	trans := thrift.NewTBufferedTransport(sock, 4096)
	if err := trans.Open(); err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	prot := thrift.NewTBinaryProtocolConf(trans, conf)
	ctx := context.Background()
	_ = prot.WriteMessageBegin(ctx, "remove_player", thrift.CALL, 1)
	_ = prot.WriteStructBegin(ctx, "args")
	_ = prot.WriteFieldStop(ctx)
	_ = prot.WriteStructEnd(ctx)
	_ = prot.WriteMessageEnd(ctx)
	if err := prot.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	name, typ, _, err := prot.ReadMessageBegin(ctx)
	if err != nil || typ != thrift.EXCEPTION || name != "remove_player" {
		t.Fatalf("unknown method answer: %q %v %v", name, typ, err)
	}
	exc := thrift.NewTApplicationException(0, "")
	if err := exc.Read(ctx, prot); err != nil {
		t.Fatal(err)
	}
	_ = prot.ReadMessageEnd(ctx)
	var ae thrift.TApplicationException
	if !errors.As(exc, &ae) || ae.TypeId() != thrift.UNKNOWN_METHOD {
		t.Fatalf("unknown method: %v", exc)
	}
	client := matchthrift.NewMatchClient(thrift.NewTStandardClient(prot, prot))
	if r, err := client.AddPlayer(ctx, 1500, "after-bad", "ok", "", "c"); err != nil || r != 0 {
		t.Fatalf("add_player after the unknown method: %d %v", r, err)
	}
	if st := td.mm.Status(ctx, "after-bad"); st.State != matchmaking.StateQueued {
		t.Fatalf("not queued: %+v", st)
	}
}

func TestThriftLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		public bool
		ok     bool
	}{
		{"127.0.0.1:9090", false, true},
		{"localhost:9090", false, true},
		{"[::1]:9090", false, true},
		{":9090", false, false},
		{"0.0.0.0:9090", false, false},
		{"10.1.2.3:9090", false, false},
		{":9090", true, true},
	} {
		err := matchmaking.CheckThriftAddr(tc.addr, tc.public)
		if (err == nil) != tc.ok {
			t.Errorf("%s public=%v: %v", tc.addr, tc.public, err)
		}
	}
}
