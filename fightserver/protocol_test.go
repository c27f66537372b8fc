package fightserver

import (
	"encoding/json"
	"math"
	"testing"
	"unicode/utf8"
)

func TestParseClientAccepts(t *testing.T) {
	for _, in := range []string{
		`{"type":"event","event":"move_to","tx":0.5,"ty":1}`,
		`{"type":"event","event":"blink","tx":-100000,"ty":100000,"ts":9007199254740992}`,
		`{"type":"event","event":"shoot_fireball","tx":1,"ty":2,"ball_uuid":"0f-_A"}`,
		`{"type":"event","event":"attack","target":"u1","ball_uuid":"b","x":1,"y":2,"angle":-3.14}`,
		`{"type":"event","event":"message","text":"hello \"world\" <3"}`,
		` {"type":"ping"}`,
		`{"type":"leave","reason":"bored"}`,
	} {
		if _, _, e := parseClient([]byte(in)); e != nil {
			t.Errorf("%s: %v", in, e)
		}
	}
}

func TestRelayEncoding(t *testing.T) {
	typ, ev, e := parseClient([]byte(`{"type":"event","event":"message","text":"a\"b\\c</script>\u00e9","ts":7}`))
	if e != nil || typ != msgEvent {
		t.Fatal(e)
	}
	b := appendRelay(nil, &ev, "u-1", "Zoë \"z\"")
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if m["text"] != "a\"b\\c</script>é" || m["username"] != "Zoë \"z\"" || m["uuid"] != "u-1" || m["ts"] != 7.0 {
		t.Fatalf("%s", b)
	}
}

// FuzzParseClient checks that parsing never panics and that whatever it
// accepts is in range and relays as valid JSON.
func FuzzParseClient(f *testing.F) {
	for _, s := range []string{
		`{"type":"event","event":"move_to","tx":1,"ty":2,"ts":3}`,
		`{"type":"event","event":"attack","target":"u","ball_uuid":"b","x":1,"y":2,"angle":0}`,
		`{"type":"event","event":"shoot_fireball","tx":1,"ty":2,"ball_uuid":"b"}`,
		`{"type":"event","event":"message","text":"hi"}`,
		`{"type":"ping"}`, `{"type":"leave"}`, `[]`, `{`, `null`, `{"type":"event","event":"blink","tx":1e308,"ty":-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, ev, e := parseClient(data)
		if e != nil {
			if e.Code == "" || e.Message == "" {
				t.Fatalf("empty error for %q", data)
			}
			return
		}
		if typ != msgEvent {
			return
		}
		for _, v := range []float64{ev.tx, ev.ty, ev.x, ev.y} {
			if math.IsNaN(v) || math.Abs(v) > MaxCoord {
				t.Fatalf("coordinate %v accepted from %q", v, data)
			}
		}
		if math.Abs(ev.angle) > MaxAngle || ev.ts < 0 || ev.ts > MaxTS || utf8.RuneCountInString(ev.text) > MaxTextRunes {
			t.Fatalf("out of range %+v from %q", ev, data)
		}
		b := appendRelay(nil, &ev, "sender", "name")
		if !json.Valid(b) {
			t.Fatalf("relay %q of %q is not JSON", b, data)
		}
	})
}
