package wire

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// kmsgKeys lists every API key kmsg implements, ascending.
func kmsgKeys() []int16 {
	var keys []int16
	for k := int16(0); k < 1024; k++ {
		if kmsg.RequestForKey(k) != nil {
			keys = append(keys, k)
		}
	}
	return keys
}

// serveAll is a Supported that serves every version kmsg can decode.
func serveAll(key int16) (VersionRange, bool) {
	r := kmsg.RequestForKey(key)
	if r == nil {
		return VersionRange{}, false
	}
	return VersionRange{0, r.MaxVersion()}, true
}

// serveOnly serves exactly the given ranges.
func serveOnly(m map[int16]VersionRange) Supported {
	return func(key int16) (VersionRange, bool) {
		r, ok := m[key]
		return r, ok
	}
}

// rng is splitmix64: deterministic test data without math/rand, which the
// determinism lint over core/ forbids in its global form.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *rng) intn(n int) int { return int(r.next() % uint64(n)) }

func (r *rng) bytes(small bool) []byte {
	if r.intn(4) == 0 {
		return nil
	}
	b := make([]byte, r.intn(12))
	for i := range b {
		b[i] = byte(r.next())
		if small {
			b[i] &= 0x7f
		}
	}
	return b
}

// fill sets every exported field of the message v points to to a random
// value, so that round trips exercise every field, nullable and tagged
// ones included. The top-level Version field is left alone. With small,
// integers stay below 128, for fuzz seeds that mayForgeTagCount accepts.
func fill(v any, r *rng, small bool) {
	e := reflect.ValueOf(v).Elem()
	version := e.FieldByName("Version").Int()
	fillValue(e, r, 0, small)
	e.FieldByName("Version").SetInt(version)
}

var tagsType = reflect.TypeFor[kmsg.Tags]()

func fillValue(v reflect.Value, r *rng, depth int, small bool) {
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(r.intn(2) == 1)
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if small {
			v.SetInt(int64(r.intn(128)))
			return
		}
		v.SetInt(int64(r.next())) // SetInt truncates to the field's width
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if small {
			v.SetUint(uint64(r.intn(128)))
			return
		}
		v.SetUint(r.next())
	case reflect.Float64:
		v.SetFloat(float64(r.intn(1<<20)) / 16)
	case reflect.String:
		v.SetString(string(r.bytes(small)))
	case reflect.Array:
		for i := range v.Len() {
			fillValue(v.Index(i), r, depth, small)
		}
	case reflect.Pointer:
		if r.intn(3) == 0 || depth > 4 {
			v.SetZero()
			return
		}
		p := reflect.New(v.Type().Elem())
		fillValue(p.Elem(), r, depth+1, small)
		v.Set(p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes(r.bytes(small))
			return
		}
		if r.intn(4) == 0 || depth > 4 {
			v.SetZero()
			return
		}
		s := reflect.MakeSlice(v.Type(), r.intn(3), r.intn(3)+2)
		for i := range s.Len() {
			fillValue(s.Index(i), r, depth+1, small)
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == tagsType {
			return
		}
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fillValue(f, r, depth, small)
			}
		}
	}
}
