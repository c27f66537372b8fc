package fleet

import (
	"errors"
	"testing"
	"time"
)

func TestOptionParsers(t *testing.T) {
	if d, err := OptionDuration("tick", "50ms", time.Millisecond, time.Second); err != nil || d != 50*time.Millisecond {
		t.Fatalf("duration: %v %v", d, err)
	}
	if f, err := OptionNumber("rate", "12.5", 0, 100); err != nil || f != 12.5 {
		t.Fatalf("number: %v %v", f, err)
	}
	if n, err := OptionInt("burst", "30", 1, 100); err != nil || n != 30 {
		t.Fatalf("int: %v %v", n, err)
	}
	for name, err := range map[string]error{
		"duration junk":  second(OptionDuration("tick", "soon", 0, time.Second)),
		"duration low":   second(OptionDuration("tick", "1ms", 5*time.Millisecond, time.Second)),
		"duration high":  second(OptionDuration("tick", "2s", 0, time.Second)),
		"number NaN":     second(OptionNumber("rate", "NaN", -1e9, 1e9)),
		"number Inf":     second(OptionNumber("rate", "+Inf", -1e9, 1e9)),
		"number low":     second(OptionNumber("rate", "-1", 0, 1)),
		"number junk":    second(OptionNumber("rate", "5/s", 0, 10)),
		"int fractional": second(OptionInt("burst", "2.5", 1, 10)),
		"int high":       second(OptionInt("burst", "11", 1, 10)),
	} {
		if !errors.Is(err, ErrBadOption) {
			t.Errorf("%s: %v, want ErrBadOption", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
