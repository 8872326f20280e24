package config

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestTopicInheritsBroker(t *testing.T) {
	b := mustBroker(t, map[string]string{
		"log.segment.bytes":              "1048576",
		"log.retention.minutes":          "30",
		"log.cleanup.policy":             "compact,delete",
		"message.max.bytes":              "2000000",
		"min.insync.replicas":            "2",
		"log.index.interval.bytes":       "8192",
		"log.flush.interval.messages":    "9223372036854775807",
		"unclean.leader.election.enable": "true",
		"log.segment.delete.delay.ms":    "0",
	})
	for _, tc := range []struct {
		name      string
		overrides map[string]string
		check     func(Topic) bool
	}{
		{"no overrides inherit the broker", nil, func(c Topic) bool {
			return c.SegmentBytes == 1048576 && c.RetentionMs == 30*minute && c.Compact() && c.Delete() &&
				c.MaxMessageBytes == 2000000 && c.MinInsyncReplicas == 2 && c.IndexIntervalBytes == 8192 &&
				c.FlushMessages == math.MaxInt64 && c.UncleanLeaderElection && c.FileDeleteDelayMs == 0 &&
				c.SegmentIndexBytes == 10485760 && c.SegmentMs == 168*hour && c.RetentionBytes == -1 &&
				c.CompressionType == "producer" && c.MessageTimestampType == "CreateTime" && c.MinCleanableDirtyRatio == 0.5
		}},
		{"overrides win", map[string]string{"segment.bytes": "4096", "retention.ms": "-1", "cleanup.policy": "compact", "flush.messages": "1"},
			func(c Topic) bool {
				return c.SegmentBytes == 4096 && c.RetentionMs == -1 && c.Compact() && !c.Delete() && c.FlushMessages == 1 &&
					c.MaxMessageBytes == 2000000 // the rest still inherited
			}},
		{"empty cleanup policy", map[string]string{"cleanup.policy": ""}, func(c Topic) bool {
			return len(c.CleanupPolicy) == 0 && !c.Compact() && !c.Delete()
		}},
		{"difference.max.ms bounds both sides", map[string]string{"message.timestamp.difference.max.ms": "1000"}, func(c Topic) bool {
			return c.MessageTimestampBeforeMaxMs == 1000 && c.MessageTimestampAfterMaxMs == 1000
		}},
		{"before/after win over difference", map[string]string{"message.timestamp.difference.max.ms": "1000", "message.timestamp.after.max.ms": "5"}, func(c Topic) bool {
			return c.MessageTimestampBeforeMaxMs == 1000 && c.MessageTimestampAfterMaxMs == 5 && c.MessageTimestampDifferenceMaxMs == 1000
		}},
		{"ratio and timestamp type", map[string]string{"min.cleanable.dirty.ratio": "0.1", "message.timestamp.type": "LogAppendTime"}, func(c Topic) bool {
			return c.MinCleanableDirtyRatio == 0.1 && c.MessageTimestampType == "LogAppendTime"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := b.TopicConfig(tc.overrides)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("%+v", c)
			}
		})
	}
}

func TestTopicInvalid(t *testing.T) {
	b := mustBroker(t, nil)
	for _, tc := range []struct {
		overrides    map[string]string
		key, message string
	}{
		{map[string]string{"retention.hours": "1"}, "retention.hours", "unknown topic config name"},
		{map[string]string{"log.retention.ms": "1"}, "log.retention.ms", "unknown topic config name"},
		{map[string]string{"retention.ms": "-2"}, "retention.ms", "at least -1"},
		{map[string]string{"segment.bytes": "13"}, "segment.bytes", "at least 14"},
		{map[string]string{"segment.bytes": "2147483648"}, "segment.bytes", "out of range"},
		{map[string]string{"segment.ms": "0"}, "segment.ms", "at least 1"},
		{map[string]string{"flush.messages": "0"}, "flush.messages", "at least 1"},
		{map[string]string{"min.insync.replicas": "zero"}, "min.insync.replicas", "not a number"},
		{map[string]string{"cleanup.policy": "compact,"}, "cleanup.policy", "one of"},
		{map[string]string{"cleanup.policy": "Compact"}, "cleanup.policy", "one of"},
		{map[string]string{"compression.type": "none"}, "compression.type", "one of"},
		{map[string]string{"compression.gzip.level": "0"}, "compression.gzip.level", "between 1 and 9"},
		{map[string]string{"message.timestamp.type": "createtime"}, "message.timestamp.type", "one of"},
		{map[string]string{"leader.replication.throttled.replicas": "0:1,x"}, "leader.replication.throttled.replicas", "partitionId:brokerId"},
		{map[string]string{"min.compaction.lag.ms": "10", "max.compaction.lag.ms": "5"}, "min.compaction.lag.ms", "conflicting"},
		{map[string]string{"remote.storage.enable": "true"}, "remote.storage.enable", "not supported"},
	} {
		_, err := b.TopicConfig(tc.overrides)
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.key) || !strings.Contains(ce.Msg, tc.message) {
			t.Errorf("%v: err = %v, want *Error for %s with %q", tc.overrides, err, tc.key, tc.message)
		}
	}
	// Valid forms Kafka accepts too.
	for _, o := range []map[string]string{
		{"leader.replication.throttled.replicas": "*"},
		{"follower.replication.throttled.replicas": "0:1, 1:2"},
		{"unclean.leader.election.enable": " TRUE "},
		{"compression.gzip.level": "-1"},
		{"retention.bytes": "-1"},
	} {
		if _, err := b.TopicConfig(o); err != nil {
			t.Errorf("%v: %v", o, err)
		}
	}
}

// TopicConfig must not share slices with the broker or with earlier results.
func TestTopicConfigIsACopy(t *testing.T) {
	b := mustBroker(t, nil)
	c, _ := b.TopicConfig(nil)
	c.CleanupPolicy[0] = "compact"
	if again, _ := b.TopicConfig(nil); !slices.Equal(again.CleanupPolicy, []string{"delete"}) {
		t.Errorf("CleanupPolicy leaked: %q", again.CleanupPolicy)
	}
}
