package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Type is a configuration's value type, numbered as KIP-569's ConfigType
// (kmsg.ConfigType) so that it can go into a DescribeConfigs response as is.
type Type int8

// The types Weir uses. CLASS (8) and PASSWORD (9) exist in Kafka but no key
// Weir accepts has them.
const (
	TypeBoolean Type = 1
	TypeString  Type = 2
	TypeInt     Type = 3
	TypeShort   Type = 4
	TypeLong    Type = 5
	TypeDouble  Type = 6
	TypeList    Type = 7
)

// String returns Kafka's upper-case name of the type, used in messages.
func (t Type) String() string {
	switch t {
	case TypeBoolean:
		return "BOOLEAN"
	case TypeString:
		return "STRING"
	case TypeInt:
		return "INT"
	case TypeShort:
		return "SHORT"
	case TypeLong:
		return "LONG"
	case TypeDouble:
		return "DOUBLE"
	case TypeList:
		return "LIST"
	}
	return "UNKNOWN"
}

// Error is a configuration key that cannot be accepted: an unknown topic
// key, a value that does not parse or is out of range, or a value that
// conflicts with another key. Callers answering a request map it to
// INVALID_CONFIG and may send Msg as the error message.
type Error struct {
	Key string // the offending key
	Msg string // the whole message; it names Key
}

func (e *Error) Error() string { return e.Msg }

func invalid(key, raw, reason string) *Error {
	return &Error{Key: key, Msg: fmt.Sprintf("invalid value %q for configuration %s: %s", raw, key, reason)}
}

// A parsed value is held as an any: bool, int64 (INT, SHORT and LONG alike,
// ranges checked at parse time), float64, string or []string. nil is Kafka's
// null: a key with no default that nobody set.

// parse converts raw text to d's type and applies d's validator. Like
// Kafka's ConfigDef.parseType it trims surrounding whitespace first, so
// "true " from a properties file is accepted.
func parse(d *Def, raw string) (any, error) {
	s := strings.TrimSpace(raw)
	var v any
	switch d.Type {
	case TypeBoolean:
		switch strings.ToLower(s) {
		case "true":
			v = true
		case "false":
			v = false
		default:
			return nil, invalid(d.Name, raw, "expected value to be either true or false")
		}
	case TypeInt, TypeShort, TypeLong:
		bits := 64
		if d.Type == TypeInt {
			bits = 32
		} else if d.Type == TypeShort {
			bits = 16
		}
		n, err := strconv.ParseInt(s, 10, bits)
		if errors.Is(err, strconv.ErrRange) {
			return nil, invalid(d.Name, raw, "out of range for type "+d.Type.String())
		} else if err != nil {
			return nil, invalid(d.Name, raw, "not a number of type "+d.Type.String())
		}
		v = n
	case TypeDouble:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, invalid(d.Name, raw, "not a number of type DOUBLE")
		}
		v = f
	case TypeString:
		v = s
	case TypeList:
		v = splitList(s)
	default:
		return nil, invalid(d.Name, raw, "unsupported type")
	}
	if d.valid != nil {
		if err := d.valid(v); err != nil {
			return nil, invalid(d.Name, raw, err.Error())
		}
	}
	return v, nil
}

// splitList splits a LIST value the way Kafka does: on commas with any
// surrounding whitespace, the empty string being the empty list. Empty
// elements ("a,,b") are kept so that validators can reject them.
func splitList(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return []string{}
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// render writes a parsed value as Kafka's ConfigDef.convertToString does, so
// DescribeConfigs answers match a Java broker's byte for byte: booleans in
// lower case, lists joined by commas, numbers in decimal. nil (null) has no
// rendering; callers send a null string.
func render(v any) *string {
	var s string
	switch v := v.(type) {
	case nil:
		return nil
	case bool:
		s = strconv.FormatBool(v)
	case int64:
		s = strconv.FormatInt(v, 10)
	case float64:
		s = javaDouble(v)
	case string:
		s = v
	case []string:
		s = strings.Join(v, ",")
	}
	return &s
}

// javaDouble formats f as Java's Double.toString: "0.5", "1.0", and
// scientific "1.0E-4" outside [1e-3, 1e7).
func javaDouble(f float64) string {
	if a := math.Abs(f); a == 0 || (a >= 1e-3 && a < 1e7) {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	}
	mant, exp, _ := strings.Cut(strconv.FormatFloat(f, 'e', -1, 64), "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}

// validator checks a parsed value; the error text becomes the reason in an
// *Error naming the key.
type validator func(v any) error

func atLeast(min int64) validator {
	return func(v any) error {
		if v.(int64) < min {
			return fmt.Errorf("value must be at least %d", min)
		}
		return nil
	}
}

func between(lo, hi int64) validator {
	return func(v any) error {
		if n := v.(int64); n < lo || n > hi {
			return fmt.Errorf("value must be between %d and %d", lo, hi)
		}
		return nil
	}
}

// ratio accepts a DOUBLE in [0, 1].
func ratio(v any) error {
	if f := v.(float64); f < 0 || f > 1 {
		return errors.New("value must be between 0 and 1")
	}
	return nil
}

// oneOf accepts a STRING in the set, or a LIST whose every element is in it
// (Kafka's ValidString.in and ValidList.in; both case-sensitive).
func oneOf(allowed ...string) validator {
	ok := func(s string) error {
		for _, a := range allowed {
			if s == a {
				return nil
			}
		}
		return fmt.Errorf("value must be one of: %s", strings.Join(allowed, ", "))
	}
	return func(v any) error {
		if l, isList := v.([]string); isList {
			for _, s := range l {
				if err := ok(s); err != nil {
					return err
				}
			}
			return nil
		}
		return ok(v.(string))
	}
}

// gzipLevel accepts Deflater's levels 1-9 or -1, its "default compression".
func gzipLevel(v any) error {
	if n := v.(int64); n != -1 && (n < 1 || n > 9) {
		return errors.New("value must be -1 (default) or between 1 and 9")
	}
	return nil
}

// throttledReplicas accepts "*" alone or a list of partition:brokerId pairs.
func throttledReplicas(v any) error {
	l := v.([]string)
	if len(l) == 1 && l[0] == "*" {
		return nil
	}
	for _, e := range l {
		p, b, found := strings.Cut(e, ":")
		_, perr := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
		_, berr := strconv.ParseInt(strings.TrimSpace(b), 10, 32)
		if !found || perr != nil || berr != nil {
			return errors.New(`value must be "*" or a list of partitionId:brokerId pairs`)
		}
	}
	return nil
}

func nonEmpty(v any) error {
	if v.(string) == "" {
		return errors.New("value must not be empty")
	}
	return nil
}
