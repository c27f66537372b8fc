package fightbench

import (
	"context"
	"testing"
	"time"
)

func TestProfLocal(t *testing.T) {
	res, err := Run(context.Background(), Config{Rooms: 300, Players: 3, Rate: 20, Duration: 8 * time.Second, Warmup: time.Second, SkipBaseline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(Format(res))
}
