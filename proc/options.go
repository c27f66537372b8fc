package proc

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
)

// SetOption sets the field named key of an option message (FightOptions,
// MapOptions, ChatOptions) from its text form, as operators write it in
// `--fight-option KEY=VALUE`: the key is the field name with '-' or '_'
// ("room-timeout" or "room_timeout"); durations are Go durations ("30s"),
// numbers decimal, booleans true/false. It is the one parser of option
// text; ranges are checked by the process that reads the options (Start
// answers ErrBadOptions). An unknown key or a value that does not parse is
// an error wrapping ErrBadOptions.
func SetOption(m proto.Message, key, value string) error {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(protoreflect.Name(strings.ReplaceAll(key, "-", "_")))
	if fd == nil || fd.IsList() || fd.IsMap() {
		return fmt.Errorf("option %s: %w: unknown option (known: %s)", key, ErrBadOptions, strings.Join(OptionNames(m), ", "))
	}
	bad := func(want string) error {
		return fmt.Errorf("option %s=%q: %w: want %s", key, value, ErrBadOptions, want)
	}
	var v protoreflect.Value
	switch fd.Kind() {
	case protoreflect.StringKind:
		v = protoreflect.ValueOfString(value)
	case protoreflect.BytesKind:
		v = protoreflect.ValueOfBytes([]byte(value))
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad("true or false")
		}
		v = protoreflect.ValueOfBool(b)
	case protoreflect.DoubleKind:
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return bad("a number")
		}
		v = protoreflect.ValueOfFloat64(f)
	case protoreflect.Int32Kind:
		n, err := strconv.ParseInt(value, 10, 32)
		if err != nil {
			return bad("an integer")
		}
		v = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.MessageKind:
		if fd.Message().FullName() != "google.protobuf.Duration" {
			return bad("a supported type")
		}
		d, err := time.ParseDuration(value)
		if err != nil {
			return bad(`a duration such as "30s"`)
		}
		v = protoreflect.ValueOfMessage(durationpb.New(d).ProtoReflect())
	default:
		return bad("a supported type")
	}
	r.Set(fd, v)
	return nil
}

// SetOptions applies KEY=VALUE pairs with SetOption.
func SetOptions(m proto.Message, kvs []string) error {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("option %q: %w: want KEY=VALUE", kv, ErrBadOptions)
		}
		if err := SetOption(m, k, v); err != nil {
			return err
		}
	}
	return nil
}

// OptionNames lists the option keys of an option message, in the dashed
// form operators write.
func OptionNames(m proto.Message) []string {
	fields := m.ProtoReflect().Descriptor().Fields()
	out := make([]string, 0, fields.Len())
	for i := 0; i < fields.Len(); i++ {
		out = append(out, strings.ReplaceAll(string(fields.Get(i).Name()), "_", "-"))
	}
	sort.Strings(out)
	return out
}

// DurationOption returns the duration d holds, and whether it is set.
func DurationOption(d *durationpb.Duration) (time.Duration, bool) {
	if d == nil {
		return 0, false
	}
	return d.AsDuration(), true
}

// CheckRange returns an error wrapping ErrBadOptions when v lies outside
// [lo, hi]: the range check processes apply to their options.
func CheckRange[T int | int32 | float64 | time.Duration](name string, v, lo, hi T) error {
	if v < lo || v > hi {
		return fmt.Errorf("option %s=%v: %w: want %v to %v", name, v, ErrBadOptions, lo, hi)
	}
	return nil
}

// OptionsJSON encodes an option message as the JSON object a game's
// configuration is (docs/your-game.md): each set field under its dashed
// name, durations as Go duration strings ("30s"), numbers as numbers,
// strings and booleans as themselves. The SDK hands it to the game, which
// reads its keys with its own configuration parser; nil gives {}.
func OptionsJSON(m proto.Message) []byte {
	out := map[string]any{}
	if m != nil && m.ProtoReflect().IsValid() {
		m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			key := strings.ReplaceAll(string(fd.Name()), "_", "-")
			switch fd.Kind() {
			case protoreflect.MessageKind:
				if d, ok := v.Message().Interface().(*durationpb.Duration); ok {
					out[key] = d.AsDuration().String()
				}
			case protoreflect.BytesKind:
				out[key] = string(v.Bytes())
			default:
				out[key] = v.Interface()
			}
			return true
		})
	}
	b, _ := json.Marshal(out)
	return b
}
