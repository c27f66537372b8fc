package fightbench

import (
	"context"
	"testing"
	"time"
)

func TestFindTS(t *testing.T) {
	for in, want := range map[string]int64{`{"a":1,"ts":123}`: 123, `{"ts":0}`: 0} {
		if got, ok := findTS([]byte(in)); !ok || got != want {
			t.Errorf("%s: %d %v", in, got, ok)
		}
	}
	for _, in := range []string{`{"a":1}`, `{"ts":}`, `{"xts":1`, ``, `}`} {
		if _, ok := findTS([]byte(in)); ok {
			t.Errorf("%s accepted", in)
		}
	}
}

// TestSmallRunInProcess runs a tiny benchmark against an in-process fight
// server: it checks the generator works end to end, not its speed.
func TestSmallRunInProcess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{Rooms: 4, Players: 3, Rate: 20, Duration: 500 * time.Millisecond, Warmup: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Connections != 12 || res.Fight.SentPerS == 0 || res.Fight.DeliveredPerS == 0 || res.Fight.Errors != 0 {
		t.Fatalf("fight phase %+v", res.Fight)
	}
	if res.Fight.Fanout != 2 || res.Baseline == nil || res.Baseline.DeliveredPerS == 0 || res.Ratios == nil {
		t.Fatalf("result %+v", res)
	}
	if res.Fight.DeliveredRatio < 0.99 || res.Baseline.DeliveredRatio < 0.99 {
		t.Fatalf("lost messages: fight %v, echo %v", res.Fight.DeliveredRatio, res.Baseline.DeliveredRatio)
	}
	if Format(res) == "" {
		t.Fatal("empty report")
	}
}
