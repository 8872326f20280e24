package config

import (
	"slices"
	"testing"
)

func TestConsumerGroupDefaults(t *testing.T) {
	b := mustBroker(t, nil)
	if b.GroupConsumerSessionTimeoutMs != 45000 || b.GroupConsumerHeartbeatIntervalMs != 5000 ||
		b.GroupConsumerMaxSize != 2147483647 || !slices.Equal(b.GroupConsumerAssignors, []string{"uniform", "range"}) {
		t.Fatalf("consumer group defaults: %d %d %d %v", b.GroupConsumerSessionTimeoutMs, b.GroupConsumerHeartbeatIntervalMs,
			b.GroupConsumerMaxSize, b.GroupConsumerAssignors)
	}
	b = mustBroker(t, map[string]string{"group.consumer.assignors": "org.apache.kafka.coordinator.group.assignor.RangeAssignor,uniform"})
	if !slices.Equal(b.GroupConsumerAssignors, []string{"range", "uniform"}) {
		t.Fatalf("assignors by class name: %v", b.GroupConsumerAssignors)
	}
}

func TestConsumerGroupBounds(t *testing.T) {
	for _, bad := range []map[string]string{
		{"group.consumer.session.timeout.ms": "30000"}, // below the 45000 minimum
		{"group.consumer.session.timeout.ms": "70000"}, // above the 60000 maximum
		{"group.consumer.heartbeat.interval.ms": "1000"},
		{"group.consumer.min.heartbeat.interval.ms": "100", "group.consumer.heartbeat.interval.ms": "100",
			"group.consumer.min.session.timeout.ms": "100", "group.consumer.session.timeout.ms": "100"}, // heartbeat not below session
		{"group.consumer.assignors": "sticky"},
		{"group.consumer.assignors": ""},
	} {
		if _, _, err := NewBroker(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}
