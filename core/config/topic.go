package config

import (
	"fmt"
	"maps"
	"math"
	"slices"
)

// Topic is the effective configuration of one topic: its overrides on top of
// the broker's defaults.
type Topic struct {
	CleanupPolicy        []string // "delete", "compact", or both
	CompressionType      string   // "producer" keeps the producer's codec
	CompressionGzipLevel int32
	CompressionLz4Level  int32
	CompressionZstdLevel int32

	SegmentBytes      int64
	SegmentMs         int64
	SegmentJitterMs   int64
	SegmentIndexBytes int32
	// IndexIntervalBytes is the log bytes written between offset index entries.
	IndexIntervalBytes int32
	Preallocate        bool
	MaxMessageBytes    int32

	// FlushMessages is how many messages may be written before an fsync; 1
	// (Weir's default) means every batch is synced before it is
	// acknowledged. math.MaxInt64 means never by count: Kafka's page-cache
	// behaviour.
	FlushMessages int64
	FlushMs       int64

	RetentionMs       int64 // -1: no limit
	RetentionBytes    int64 // -1: no limit
	FileDeleteDelayMs int64

	DeleteRetentionMs      int64
	MinCompactionLagMs     int64
	MaxCompactionLagMs     int64
	MinCleanableDirtyRatio float64

	MinInsyncReplicas     int32
	UncleanLeaderElection bool

	MessageTimestampType string // "CreateTime" or "LogAppendTime"
	// MessageTimestampDifferenceMaxMs is the deprecated key as set.
	// BeforeMaxMs and AfterMaxMs are the bounds to enforce: each falls back to
	// the difference when left at its maximum (KIP-937), so checking only
	// these two is correct whichever keys the user set.
	MessageTimestampDifferenceMaxMs int64
	MessageTimestampBeforeMaxMs     int64
	MessageTimestampAfterMaxMs      int64

	MessageDownconversionEnable bool
}

// Compact reports whether the cleanup policy includes compaction.
func (t Topic) Compact() bool { return slices.Contains(t.CleanupPolicy, "compact") }

// Delete reports whether the cleanup policy includes time and size retention.
func (t Topic) Delete() bool { return slices.Contains(t.CleanupPolicy, "delete") }

// topicDefaults holds every topic key's own parsed default, used only by
// keys no broker key supplies.
var topicDefaults = func() map[string]any {
	m := make(map[string]any, len(topicDefs))
	for i := range topicDefs {
		m[topicDefs[i].Name] = defaultValue(&topicDefs[i])
	}
	return m
}()

// TopicConfig computes the configuration of a topic with the given overrides
// (the topic keys set by CreateTopics or AlterConfigs). An unknown key, a bad
// value, or overrides that conflict return an *Error naming the key, which
// the caller answers with INVALID_CONFIG, as Kafka does.
func (b *Broker) TopicConfig(overrides map[string]string) (Topic, error) {
	parsed := make(map[string]any, len(overrides))
	for _, k := range slices.Sorted(maps.Keys(overrides)) {
		d := topicByName[k]
		if d == nil {
			return Topic{}, &Error{Key: k, Msg: "unknown topic config name: " + k}
		}
		v, err := parse(d, overrides[k])
		if err != nil {
			return Topic{}, err
		}
		parsed[k] = v
	}

	vals := make(map[string]any, len(topicDefs))
	for i := range topicDefs {
		d := &topicDefs[i]
		chain := b.topicChain(d, parsed)
		v := topicValue(d, chain)
		// A broker value passed its own validator, but in other units or
		// with a looser range; check it as the topic key it becomes.
		if d.valid != nil && len(chain) > 0 && chain[0].source != SourceDynamicTopic {
			if err := d.valid(v); err != nil {
				return Topic{}, invalid(chain[0].name, *render(chain[0].val), err.Error()+" (as "+d.Name+")")
			}
		}
		vals[d.Name] = v
	}

	num := func(k string) int64 { return vals[k].(int64) }
	flag := func(k string) bool { return vals[k].(bool) }
	str := func(k string) string { return vals[k].(string) }
	t := Topic{
		CleanupPolicy:        slices.Clone(vals["cleanup.policy"].([]string)),
		CompressionType:      str("compression.type"),
		CompressionGzipLevel: int32(num("compression.gzip.level")),
		CompressionLz4Level:  int32(num("compression.lz4.level")),
		CompressionZstdLevel: int32(num("compression.zstd.level")),

		SegmentBytes:       num("segment.bytes"),
		SegmentMs:          num("segment.ms"),
		SegmentJitterMs:    num("segment.jitter.ms"),
		SegmentIndexBytes:  int32(num("segment.index.bytes")),
		IndexIntervalBytes: int32(num("index.interval.bytes")),
		Preallocate:        flag("preallocate"),
		MaxMessageBytes:    int32(num("max.message.bytes")),

		FlushMessages: num("flush.messages"),
		FlushMs:       num("flush.ms"),

		RetentionMs:       num("retention.ms"),
		RetentionBytes:    num("retention.bytes"),
		FileDeleteDelayMs: num("file.delete.delay.ms"),

		DeleteRetentionMs:      num("delete.retention.ms"),
		MinCompactionLagMs:     num("min.compaction.lag.ms"),
		MaxCompactionLagMs:     num("max.compaction.lag.ms"),
		MinCleanableDirtyRatio: vals["min.cleanable.dirty.ratio"].(float64),

		MinInsyncReplicas:     int32(num("min.insync.replicas")),
		UncleanLeaderElection: flag("unclean.leader.election.enable"),

		MessageTimestampType:            str("message.timestamp.type"),
		MessageTimestampDifferenceMaxMs: num("message.timestamp.difference.max.ms"),
		MessageTimestampBeforeMaxMs:     num("message.timestamp.before.max.ms"),
		MessageTimestampAfterMaxMs:      num("message.timestamp.after.max.ms"),

		MessageDownconversionEnable: flag("message.downconversion.enable"),
	}
	if t.MessageTimestampBeforeMaxMs == math.MaxInt64 {
		t.MessageTimestampBeforeMaxMs = t.MessageTimestampDifferenceMaxMs
	}
	if t.MessageTimestampAfterMaxMs == math.MaxInt64 {
		t.MessageTimestampAfterMaxMs = t.MessageTimestampDifferenceMaxMs
	}

	if t.MinCompactionLagMs > t.MaxCompactionLagMs {
		return Topic{}, &Error{Key: "min.compaction.lag.ms", Msg: fmt.Sprintf(
			"conflicting topic configuration: min.compaction.lag.ms (%d) > max.compaction.lag.ms (%d)", t.MinCompactionLagMs, t.MaxCompactionLagMs)}
	}
	// Kafka answers the same when the broker has no remote storage.
	if flag("remote.storage.enable") {
		return Topic{}, &Error{Key: "remote.storage.enable", Msg: "remote.storage.enable: tiered storage is not supported by Weir"}
	}
	return t, nil
}

// link is one place a topic key's value can come from. DescribeConfigs
// reports the chain of links as the key's synonyms, and the head of the
// chain supplies the value: this one list decides both, so they cannot
// disagree.
type link struct {
	name   string
	def    *Def
	val    any // in name's own type and unit
	source int8
}

// topicChain lists, highest precedence first: the topic's override, then
// for each broker synonym its static value and its non-null default.
// Nothing follows a non-null default, but Kafka lists it anyway.
func (b *Broker) topicChain(d *Def, overrides map[string]any) []link {
	var chain []link
	if v, ok := overrides[d.Name]; ok {
		chain = append(chain, link{d.Name, d, v, SourceDynamicTopic})
	}
	for _, s := range d.Synonyms {
		chain = append(chain, b.brokerLinks(s)...)
	}
	return chain
}

// brokerLinks lists where broker key name gets its value: the properties
// file (or flags), then its default.
func (b *Broker) brokerLinks(name string) []link {
	d := brokerByName[name]
	var out []link
	if b.IsStatic(name) {
		out = append(out, link{name, d, b.vals[name], SourceStaticBroker})
	}
	if !d.Null {
		out = append(out, link{name, d, brokerDefaults[name], SourceDefault})
	}
	return out
}

// topicValue is the value of topic key d given its chain, converted to the
// topic key's unit.
func topicValue(d *Def, chain []link) any {
	if len(chain) == 0 {
		return topicDefaults[d.Name]
	}
	return scaleToMs(chain[0].def, chain[0].val)
}
