package fleet

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// ErrBadOption is wrapped by the option parsers below: a StartConfig
// option whose value does not parse or is out of its range.
var ErrBadOption = errors.New("bad option")

// OptionDuration parses the option key's value v, a Go duration ("2s",
// "50ms"), and checks that it lies in [min, max].
func OptionDuration(key, v string, min, max time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < min || d > max {
		return 0, fmt.Errorf("option %s=%q: %w: want a duration in [%v, %v]", key, v, ErrBadOption, min, max)
	}
	return d, nil
}

// OptionNumber parses the option key's value v, a decimal number, and
// checks that it lies in [min, max] (NaN and infinities never do).
func OptionNumber(key, v string, min, max float64) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f < min || f > max {
		return 0, fmt.Errorf("option %s=%q: %w: want a number in [%v, %v]", key, v, ErrBadOption, min, max)
	}
	return f, nil
}

// OptionInt parses the option key's value v, an integer, and checks that
// it lies in [min, max].
func OptionInt(key, v string, min, max int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("option %s=%q: %w: want an integer in [%d, %d]", key, v, ErrBadOption, min, max)
	}
	return n, nil
}
