package dispatcher

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/arena-game/arena/proto/matchthrift"
)

// The two trusted intakes side by side on one dispatcher: the seed's
// Thrift add_player (a new connection per call, as the seed's client
// does, and one kept open) and POST /v1/tickets (keep-alive). Each call
// queues a new backend ticket (player record, store journal, queue).
func BenchmarkIntake(b *testing.B) {
	td := newTestDispatcher(b, func(c *Config) { c.Thrift = "127.0.0.1:0"; c.Match.Tick = time.Hour })
	var n atomic.Int64
	id := func(prefix string) string { return fmt.Sprintf("%s%d", prefix, n.Add(1)) }
	ctx := context.Background()
	conf := &thrift.TConfiguration{ConnectTimeout: 5 * time.Second, SocketTimeout: 5 * time.Second}
	dial := func() (*matchthrift.MatchClient, thrift.TTransport) {
		trans := thrift.NewTBufferedTransport(thrift.NewTSocketConf(td.ThriftAddr(), conf), 4096)
		if err := trans.Open(); err != nil {
			b.Fatal(err)
		}
		prot := thrift.NewTBinaryProtocolConf(trans, conf)
		return matchthrift.NewMatchClient(thrift.NewTStandardClient(prot, prot)), trans
	}
	b.Run("thrift-seed-client", func(b *testing.B) {
		for b.Loop() {
			c, trans := dial()
			if _, err := c.AddPlayer(ctx, 1500, id("ts"), "seed", "", "chan"); err != nil {
				b.Fatal(err)
			}
			trans.Close()
		}
	})
	b.Run("thrift-kept-open", func(b *testing.B) {
		c, trans := dial()
		defer trans.Close()
		for b.Loop() {
			if _, err := c.AddPlayer(ctx, 1500, id("tk"), "seed", "", "chan"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http-tickets", func(b *testing.B) {
		client := &http.Client{}
		for b.Loop() {
			body := fmt.Sprintf(`{"score":1500,"uuid":%q,"username":"seed","channel_name":"chan"}`, id("h"))
			req, _ := http.NewRequest("POST", td.base+"/v1/tickets", bytes.NewReader([]byte(body)))
			req.Header.Set("Authorization", "Bearer "+tBackend)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 202 {
				b.Fatalf("status %d", resp.StatusCode)
			}
		}
	})
}
