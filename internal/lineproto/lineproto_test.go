package lineproto

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Request
		err  error
	}{
		{"get", Request{Verb: VerbGet, Kind: KindFight}, nil},
		{"get\r", Request{Verb: VerbGet, Kind: KindFight}, nil},
		{"get|fight", Request{Verb: VerbGet, Kind: KindFight}, nil},
		{"get|map|forest-1", Request{Verb: VerbGet, Kind: KindMap, Map: "forest-1"}, nil},
		{"get|map", Request{}, ErrFields},
		{"get|map|bad id", Request{}, ErrBadMap},
		{"get|map|" + strings.Repeat("m", 65), Request{}, ErrBadMap},
		{"get|boss", Request{}, ErrBadKind},
		{"get|fight|x", Request{}, ErrFields},
		{"add|7000|tok", Request{Verb: VerbAdd, Port: 7000, Token: "tok"}, nil},
		{"add|7000", Request{Verb: VerbAdd, Port: 7000}, nil},
		{"del|7500|tok|town", Request{Verb: VerbDel, Port: 7500, Token: "tok", Map: "town"}, nil},
		{"add|10.0.0.7:7000|tok", Request{Verb: VerbAdd, Host: "10.0.0.7", Port: 7000, Token: "tok"}, nil},
		{"del|host-b.example:7501|tok|town", Request{Verb: VerbDel, Host: "host-b.example", Port: 7501, Token: "tok", Map: "town"}, nil},
		{"add|[::1]:7000|tok", Request{Verb: VerbAdd, Host: "::1", Port: 7000, Token: "tok"}, nil},
		{"add|:7000|tok", Request{}, ErrBadPort},
		{"add|h st:7000|tok", Request{}, ErrBadPort},
		{"add|[zz]:7000|tok", Request{}, ErrBadPort},
		{"add|[]:7000|tok", Request{}, ErrBadPort},
		{"add|host:|tok", Request{}, ErrBadPort},
		{"add|host:70000|tok", Request{}, ErrBadPort},
		{"add|0|tok", Request{}, ErrBadPort},
		{"add|65536|tok", Request{}, ErrBadPort},
		{"add|-1|tok", Request{}, ErrBadPort},
		{"add|7o00|tok", Request{}, ErrBadPort},
		{"add|99999999999999999999|tok", Request{}, ErrBadPort},
		{"add|7000|", Request{}, ErrBadToken},
		{"add", Request{}, ErrFields},
		{"add|1|2|3|4", Request{}, ErrFields},
		{"add|1|2|3|4|5|6", Request{}, ErrFields},
		{"maxnum|5|tok", Request{Verb: VerbMaxnum, N: 5, Token: "tok"}, nil},
		{"maxnum|0|tok", Request{}, ErrBadNumber},
		{"maxnum|-3|tok", Request{}, ErrBadNumber},
		{"maxnum|1000001|tok", Request{}, ErrBadNumber},
		{"maxnum|5", Request{}, ErrFields},
		{"stat", Request{Verb: VerbStat}, nil},
		{"stat|x", Request{}, ErrFields},
		{"", Request{}, ErrEmpty},
		{"GET", Request{}, ErrUnknownVerb},
		{"hello", Request{}, ErrUnknownVerb},
		{"|||", Request{}, ErrUnknownVerb},
		{strings.Repeat("a", MaxLine+1), Request{}, ErrTooLong},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if !errors.Is(err, tt.err) {
			t.Errorf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestFormatRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{Verb: VerbGet, Kind: KindFight},
		{Verb: VerbGet, Kind: KindMap, Map: "m1"},
		{Verb: VerbAdd, Port: 7000, Token: "t"},
		{Verb: VerbDel, Port: 7500, Token: "t", Map: "town"},
		{Verb: VerbAdd, Host: "10.1.2.3", Port: 7000, Token: "t"},
		{Verb: VerbDel, Host: "::1", Port: 7000, Token: "t", Map: "m"},
		{Verb: VerbMaxnum, N: 3, Token: "t"},
		{Verb: VerbStat},
	} {
		got, err := Parse([]byte(r.Format()))
		if err != nil || got != r {
			t.Errorf("round trip %+v: got %+v, %v", r, got, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"get", "get|map|a", "add|7000|t", "add|10.0.0.1:7000|t", "del|[::1]:1|t|m", "del|1|t|m", "maxnum|3|t", "stat", "|", "add||", "get|map|\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse(b)
		if err != nil {
			return
		}
		// A request that parses must format to a line that parses the same.
		again, err := Parse([]byte(r.Format()))
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v; reparse of %q = %+v, %v", b, r, r.Format(), again, err)
		}
	})
}

func BenchmarkParseGet(b *testing.B) {
	line := []byte("get")
	for i := 0; i < b.N; i++ {
		if _, err := Parse(line); err != nil {
			b.Fatal(err)
		}
	}
}
