package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func str(s string) *string { return &s }

func find(t *testing.T, entries []Entry, name string) Entry {
	t.Helper()
	i := slices.IndexFunc(entries, func(e Entry) bool { return e.Name == name })
	if i < 0 {
		t.Fatalf("no entry %s", name)
	}
	return entries[i]
}

// checkEntry compares the parts of an entry that DescribeConfigs clients show.
func checkEntry(t *testing.T, got Entry, value *string, source int8, synonyms []Synonym) {
	t.Helper()
	if !reflect.DeepEqual(got.Value, value) || got.Source != source || !reflect.DeepEqual(got.Synonyms, synonyms) {
		show := func(v *string) string {
			if v == nil {
				return "null"
			}
			return *v
		}
		t.Errorf("%s: value %s source %d synonyms %s\nwant value %s source %d synonyms %s",
			got.Name, show(got.Value), got.Source, showSynonyms(got.Synonyms), show(value), source, showSynonyms(synonyms))
	}
}

func showSynonyms(s []Synonym) string {
	var parts []string
	for _, y := range s {
		v := "null"
		if y.Value != nil {
			v = *y.Value
		}
		parts = append(parts, y.Name+"="+v+"/"+string(rune('0'+y.Source)))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestDescribeTopicSources(t *testing.T) {
	b := mustBroker(t, map[string]string{
		"log.retention.hours":      "24",
		"log.segment.bytes":        "1048576",
		"log.cleanup.policy":       "compact, delete",
		"log.flush.interval.ms":    "1000",
		"log.roll.hours":           "1",
		"message.max.bytes":        "2000000",
		"min.insync.replicas":      "2",
		"log.index.interval.bytes": "4096", // set, though equal to the default
	})
	overrides := map[string]string{
		"max.message.bytes":         "5000",
		"segment.ms":                "60000",
		"min.cleanable.dirty.ratio": "1",
		"preallocate":               "TRUE",
	}
	entries := b.DescribeTopic(overrides, true)

	// (a) A topic override: the override, then every broker synonym.
	checkEntry(t, find(t, entries, "max.message.bytes"), str("5000"), SourceDynamicTopic, []Synonym{
		{"max.message.bytes", str("5000"), SourceDynamicTopic},
		{"message.max.bytes", str("2000000"), SourceStaticBroker},
		{"message.max.bytes", str("1048588"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "segment.ms"), str("60000"), SourceDynamicTopic, []Synonym{
		{"segment.ms", str("60000"), SourceDynamicTopic},
		{"log.roll.hours", str("1"), SourceStaticBroker},
		{"log.roll.hours", str("168"), SourceDefault},
	})
	// Values render as Kafka renders the parsed value.
	checkEntry(t, find(t, entries, "min.cleanable.dirty.ratio"), str("1.0"), SourceDynamicTopic, []Synonym{
		{"min.cleanable.dirty.ratio", str("1.0"), SourceDynamicTopic},
		{"log.cleaner.min.cleanable.ratio", str("0.5"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "preallocate"), str("true"), SourceDynamicTopic, []Synonym{
		{"preallocate", str("true"), SourceDynamicTopic},
		{"log.preallocate", str("false"), SourceDefault},
	})

	// (b) A static broker value: the value is in the topic key's unit, the
	// synonym in the broker key's.
	checkEntry(t, find(t, entries, "retention.ms"), str("86400000"), SourceStaticBroker, []Synonym{
		{"log.retention.hours", str("24"), SourceStaticBroker},
		{"log.retention.hours", str("168"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "cleanup.policy"), str("compact,delete"), SourceStaticBroker, []Synonym{
		{"log.cleanup.policy", str("compact,delete"), SourceStaticBroker},
		{"log.cleanup.policy", str("delete"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "flush.ms"), str("1000"), SourceStaticBroker, []Synonym{
		{"log.flush.interval.ms", str("1000"), SourceStaticBroker},
		{"log.flush.scheduler.interval.ms", str("9223372036854775807"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "index.interval.bytes"), str("4096"), SourceStaticBroker, []Synonym{
		{"log.index.interval.bytes", str("4096"), SourceStaticBroker},
		{"log.index.interval.bytes", str("4096"), SourceDefault},
	})

	// (c) Defaults, with and without a broker synonym.
	checkEntry(t, find(t, entries, "delete.retention.ms"), str("86400000"), SourceDefault, []Synonym{
		{"log.cleaner.delete.retention.ms", str("86400000"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "flush.messages"), str("1"), SourceDefault, []Synonym{
		{"log.flush.interval.messages", str("1"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "unclean.leader.election.enable"), str("false"), SourceDefault, []Synonym{
		{"unclean.leader.election.enable", str("false"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "remote.storage.enable"), str("false"), SourceDefault, []Synonym{})
	checkEntry(t, find(t, entries, "leader.replication.throttled.replicas"), str(""), SourceDefault, []Synonym{})

	for _, e := range entries {
		if e.ReadOnly || e.Sensitive || e.Documentation == nil || *e.Documentation == "" {
			t.Errorf("%s: readOnly %v sensitive %v doc %v", e.Name, e.ReadOnly, e.Sensitive, e.Documentation)
		}
	}
	if e := find(t, entries, "cleanup.policy"); e.Type != int8(kmsg.ConfigTypeList) {
		t.Errorf("cleanup.policy type %d", e.Type)
	}

	// Without synonyms the source is still the synonym chain's head.
	for _, e := range b.DescribeTopic(overrides, false) {
		if e.Synonyms != nil {
			t.Errorf("%s: synonyms %v not asked for", e.Name, e.Synonyms)
		}
		if want := find(t, entries, e.Name); e.Source != want.Source || !reflect.DeepEqual(e.Value, want.Value) {
			t.Errorf("%s differs without synonyms", e.Name)
		}
	}
}

// The reported value is the value TopicConfig computes.
func TestDescribeTopicMatchesTopicConfig(t *testing.T) {
	b := mustBroker(t, map[string]string{"log.retention.minutes": "90", "log.roll.jitter.hours": "2"})
	c, err := b.TopicConfig(map[string]string{"segment.bytes": "100000"})
	if err != nil {
		t.Fatal(err)
	}
	entries := b.DescribeTopic(map[string]string{"segment.bytes": "100000"}, false)
	for name, want := range map[string]int64{"retention.ms": c.RetentionMs, "segment.jitter.ms": c.SegmentJitterMs, "segment.bytes": c.SegmentBytes} {
		if got := find(t, entries, name).Value; got == nil || *got != itoa(want) {
			t.Errorf("%s: described %v, TopicConfig %d", name, got, want)
		}
	}
}

func TestDescribeTopicLenient(t *testing.T) {
	b := mustBroker(t, nil)
	entries := b.DescribeTopic(map[string]string{"retention.ms": "soon", "no.such.key": "1"}, true)
	checkEntry(t, find(t, entries, "retention.ms"), str("soon"), SourceDynamicTopic, []Synonym{
		{"retention.ms", str("soon"), SourceDynamicTopic},
		{"log.retention.hours", str("168"), SourceDefault},
	})
	if slices.ContainsFunc(entries, func(e Entry) bool { return e.Name == "no.such.key" }) {
		t.Error("unknown override described")
	}
}

func TestDescribeBroker(t *testing.T) {
	b := mustBroker(t, map[string]string{"log.retention.hours": "24", "num.partitions": "3", "broker.rack": "r1"})
	entries := b.DescribeBroker(true)
	// A null key overridden through its synonym reports the synonym's source,
	// as Kafka does.
	checkEntry(t, find(t, entries, "log.retention.ms"), nil, SourceStaticBroker, []Synonym{
		{"log.retention.hours", str("24"), SourceStaticBroker},
		{"log.retention.hours", str("168"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "log.retention.hours"), str("24"), SourceStaticBroker, []Synonym{
		{"log.retention.hours", str("24"), SourceStaticBroker},
		{"log.retention.hours", str("168"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "num.partitions"), str("3"), SourceStaticBroker, []Synonym{
		{"num.partitions", str("3"), SourceStaticBroker},
		{"num.partitions", str("1"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "broker.rack"), str("r1"), SourceStaticBroker, []Synonym{
		{"broker.rack", str("r1"), SourceStaticBroker},
	})
	checkEntry(t, find(t, entries, "log.flush.scheduler.interval.ms"), str("9223372036854775807"), SourceDefault, []Synonym{
		{"log.flush.scheduler.interval.ms", str("9223372036854775807"), SourceDefault},
	})
	checkEntry(t, find(t, entries, "cluster.id"), nil, SourceDefault, []Synonym{})
	checkEntry(t, find(t, entries, "listeners"), str("PLAINTEXT://127.0.0.1:9092"), SourceDefault, []Synonym{
		{"listeners", str("PLAINTEXT://127.0.0.1:9092"), SourceDefault},
	})
	for _, e := range entries {
		if !e.ReadOnly {
			t.Errorf("%s is not read-only", e.Name)
		}
	}
	if e := find(t, entries, "offsets.topic.replication.factor"); e.Type != int8(kmsg.ConfigTypeShort) {
		t.Errorf("offsets.topic.replication.factor type %d", e.Type)
	}
}

// Output order is by name and identical from call to call, whatever the map
// iteration order of the inputs.
func TestDescribeDeterministic(t *testing.T) {
	overrides := map[string]string{}
	for _, d := range TopicDefs() {
		overrides[d.Name] = d.Default
	}
	b := mustBroker(t, map[string]string{"num.partitions": "3", "log.retention.ms": "1", "log.segment.bytes": "100000"})
	first, firstBroker := b.DescribeTopic(overrides, true), b.DescribeBroker(true)
	for _, entries := range [][]Entry{first, firstBroker} {
		if !slices.IsSortedFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) }) {
			t.Error("entries not sorted by name")
		}
	}
	if len(first) != len(TopicDefs()) || len(firstBroker) != len(BrokerDefs()) {
		t.Errorf("%d topic entries, %d broker entries", len(first), len(firstBroker))
	}
	for range 20 {
		if !reflect.DeepEqual(b.DescribeTopic(overrides, true), first) || !reflect.DeepEqual(b.DescribeBroker(true), firstBroker) {
			t.Fatal("output differs between calls")
		}
	}
}

// The numbering matches the wire protocol's, as kmsg defines it.
func TestWireConstants(t *testing.T) {
	pairs := [][2]int8{
		{SourceDynamicTopic, int8(kmsg.ConfigSourceDynamicTopicConfig)},
		{SourceStaticBroker, int8(kmsg.ConfigSourceStaticBrokerConfig)},
		{SourceDefault, int8(kmsg.ConfigSourceDefaultConfig)},
		{int8(TypeBoolean), int8(kmsg.ConfigTypeBoolean)},
		{int8(TypeString), int8(kmsg.ConfigTypeString)},
		{int8(TypeInt), int8(kmsg.ConfigTypeInt)},
		{int8(TypeShort), int8(kmsg.ConfigTypeShort)},
		{int8(TypeLong), int8(kmsg.ConfigTypeLong)},
		{int8(TypeDouble), int8(kmsg.ConfigTypeDouble)},
		{int8(TypeList), int8(kmsg.ConfigTypeList)},
	}
	for i, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("pair %d: %d != %d", i, p[0], p[1])
		}
	}
}
