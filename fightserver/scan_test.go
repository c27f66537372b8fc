package fightserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// refScan is scanObject's reference, built on encoding/json: the same
// semantics (exact keys in document order, last value wins, null is
// absent, any wrong-typed known value is remembered) from the standard
// library's decoder.
func refScan(data []byte) (fields, bool) {
	var f fields
	if !utf8.Valid(data) || !json.Valid(data) {
		return f, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return f, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return f, false
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return f, false
		}
		id := lookupField([]byte(tok.(string)))
		switch {
		case id == fNone:
		case string(raw) == "null":
			f.has[id] = false
		case isNumField(id):
			var v float64
			if err := json.Unmarshal(raw, &v); err != nil {
				var te *json.UnmarshalTypeError
				f.setBad(id, errors.As(err, &te) && bytes.ContainsAny(raw[:1], "-0123456789"))
				continue
			}
			f.has[id], f.num[id] = true, v
		default:
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				f.setBad(id, false)
				continue
			}
			f.has[id], f.str[id] = true, []byte(v)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return f, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return f, false
	}
	return f, true
}

// depth is the JSON nesting depth of data (strings ignored), for inputs
// deeper than scanObject accepts by design.
func depth(data []byte) int {
	d, max, inStr := 0, 0, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			d++
			max = maxInt(max, d)
		case !inStr && (c == '}' || c == ']'):
			d--
		}
	}
	return max
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}

func sameFields(a, b *fields) bool {
	if a.has != b.has || a.badType != b.badType || (a.bad == fNone) != (b.bad == fNone) {
		return false
	}
	for id := fieldID(1); id < nFields; id++ {
		if a.has[id] && (a.num[id] != b.num[id] || !bytes.Equal(a.str[id], b.str[id])) {
			return false
		}
	}
	return true
}

var scanSeeds = []string{
	`{"type":"event","event":"move_to","tx":1,"ty":2,"ts":3}`,
	`{"type":"event","event":"attack","target":"u","ball_uuid":"b","x":1,"y":2,"angle":0}`,
	`{"type":"event","event":"shoot_fireball","tx":1.5e2,"ty":-0.25,"ball_uuid":"b"}`,
	`{"type":"event","event":"message","text":"h\u00e9\ud83d\ude00 \ud800 \"q\" \\ \/ \b\f\n\r\t"}`,
	`{"type":"ping"}`, `{"type":"leave"}`, `[]`, `{`, `null`, `{}`, ` { } `, `{"a":{"b":[1,{"c":null}]},"type":"ping"}`,
	`{"type":"event","event":"blink","tx":1e308,"ty":-0}`, `{"tx":1e400}`, `{"type":5}`, `{"tx":"1","type":[]}`,
	`{"type":"ping","type":null}`, `{"t\u0079pe":"ping"}`, `{"TYPE":"ping"}`, `{"type":"ping"} x`, `{"a":01}`,
	`{"a":1.}`, `{"a":-}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a" 1}`, `{"a":1,}`, `{,}`,
}

func TestScanMatchesReference(t *testing.T) {
	for _, s := range scanSeeds {
		var got fields
		ok := scanObject([]byte(s), &got)
		want, wantOK := refScan([]byte(s))
		if ok != wantOK || ok && !sameFields(&got, &want) {
			t.Errorf("%s: scan %v %+v, reference %v %+v", s, ok, got, wantOK, want)
		}
	}
}

// FuzzScanDifferential checks scanObject against the encoding/json
// reference on arbitrary input.
func FuzzScanDifferential(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if depth(data) >= maxDepth {
			return
		}
		var got fields
		ok := scanObject(data, &got)
		want, wantOK := refScan(data)
		if ok != wantOK || ok && !sameFields(&got, &want) {
			t.Fatalf("%q: scan %v %+v, reference %v %+v", data, ok, got, wantOK, want)
		}
	})
}

func BenchmarkParseMoveTo(b *testing.B) {
	msg := []byte(`{"type":"event","event":"move_to","tx":12.5,"ty":77.25,"ts":123456789}`)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		parseClient(msg)
	}
}

func BenchmarkRelayMoveTo(b *testing.B) {
	_, ev, _ := parseClient([]byte(`{"type":"event","event":"move_to","tx":12.5,"ty":77.25,"ts":123456789}`))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		appendRelay(make([]byte, 0, 160), &ev, "6a1e2b3c-0000-4000-8000-00000000abcd", "name")
	}
}
