package config

import (
	"math"
	"testing"
)

// The tables are data that tests must keep honest: every default valid,
// every synonym defined, and the documented topic defaults equal to what
// the broker defaults produce.
func TestRegistry(t *testing.T) {
	for _, defs := range [][]Def{TopicDefs(), BrokerDefs()} {
		for i, d := range defs {
			if i > 0 && defs[i-1].Name >= d.Name {
				t.Errorf("%s: not sorted or duplicated", d.Name)
			}
			if d.Doc == "" || d.Type.String() == "UNKNOWN" {
				t.Errorf("%s: no doc or bad type", d.Name)
			}
			if !d.Null {
				if err := d.Validate(d.Default); err != nil {
					t.Errorf("%s: default: %v", d.Name, err)
				}
			}
		}
	}
	for _, d := range TopicDefs() {
		if d.Null {
			t.Errorf("%s: a topic key needs a default", d.Name)
		}
		var chainDefault any
		for _, s := range d.Synonyms {
			bd, ok := brokerByName[s]
			if !ok {
				t.Errorf("%s: synonym %s is not a broker key", d.Name, s)
				continue
			}
			if !isNumeric(bd.Type) && bd.Type != d.Type || isNumeric(bd.Type) != isNumeric(d.Type) {
				t.Errorf("%s (%s): synonym %s has type %s", d.Name, d.Type, s, bd.Type)
			}
			if chainDefault == nil && !bd.Null {
				chainDefault = scaleToMs(bd, defaultValue(bd))
			}
		}
		if d.Synonyms != nil {
			if got, want := render(chainDefault), render(topicDefaults[d.Name]); got == nil || *got != *want {
				t.Errorf("%s: broker default %v, topic default %s", d.Name, got, *want)
			}
		}
	}
	for name, chain := range brokerSynonyms {
		for _, s := range append(chain, name) {
			if _, ok := brokerByName[s]; !ok {
				t.Errorf("brokerSynonyms: %s is not a broker key", s)
			}
		}
	}
}

func isNumeric(t Type) bool { return t == TypeInt || t == TypeShort || t == TypeLong }

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{true, "true"},
		{int64(-1), "-1"},
		{int64(math.MaxInt64), "9223372036854775807"},
		{0.5, "0.5"},
		{1.0, "1.0"},
		{0.0, "0.0"},
		{0.0001, "1.0E-4"},
		{12345678.0, "1.2345678E7"},
		{[]string{"compact", "delete"}, "compact,delete"},
		{[]string{}, ""},
		{"x", "x"},
	} {
		if got := *render(tc.v); got != tc.want {
			t.Errorf("render(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	if render(nil) != nil {
		t.Error("render(nil) is not null")
	}
}

func TestLookup(t *testing.T) {
	d, ok := TopicDef("retention.ms")
	if !ok || d.Type != TypeLong || len(d.Synonyms) != 3 {
		t.Fatalf("TopicDef(retention.ms) = %+v, %v", d, ok)
	}
	d.Synonyms[0] = "mutated"
	if again, _ := TopicDef("retention.ms"); again.Synonyms[0] != "log.retention.ms" {
		t.Error("TopicDef shares its synonyms with the registry")
	}
	if _, ok := BrokerDef("retention.ms"); ok {
		t.Error("retention.ms is not a broker key")
	}
	if _, ok := BrokerDef("log.retention.hours"); !ok {
		t.Error("log.retention.hours is a broker key")
	}
}
