package config

import (
	"fmt"
	"strings"
)

// consumerAssignors are the values group.consumer.assignors accepts: the
// short names of Kafka's server-side assignors and their class names.
var consumerAssignors = []string{
	"uniform", "range",
	"org.apache.kafka.coordinator.group.assignor.UniformAssignor",
	"org.apache.kafka.coordinator.group.assignor.RangeAssignor",
}

// ConsumerAssignorName is the short name of an assignor given by its short
// name or its Kafka class name.
func ConsumerAssignorName(v string) string {
	switch {
	case strings.HasSuffix(v, ".UniformAssignor"):
		return "uniform"
	case strings.HasSuffix(v, ".RangeAssignor"):
		return "range"
	}
	return v
}

// checkConsumerGroupBounds is Kafka's GroupCoordinatorConfig check of the
// KIP-848 settings: at least one assignor, each timeout within its
// bounds, and a heartbeat more frequent than the session timeout.
func (b *Broker) checkConsumerGroupBounds() error {
	if len(b.GroupConsumerAssignors) == 0 {
		return &Error{Key: "group.consumer.assignors", Msg: "group.consumer.assignors must name at least one assignor"}
	}
	within := func(key string, v, lo, hi int32, loKey, hiKey string) error {
		if lo > hi {
			return &Error{Key: loKey, Msg: fmt.Sprintf("%s (%d) must not exceed %s (%d)", loKey, lo, hiKey, hi)}
		}
		if v < lo || v > hi {
			return &Error{Key: key, Msg: fmt.Sprintf("%s (%d) must be between %s (%d) and %s (%d)", key, v, loKey, lo, hiKey, hi)}
		}
		return nil
	}
	if err := within("group.consumer.session.timeout.ms", b.GroupConsumerSessionTimeoutMs,
		b.GroupConsumerMinSessionTimeoutMs, b.GroupConsumerMaxSessionTimeoutMs,
		"group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms"); err != nil {
		return err
	}
	if err := within("group.consumer.heartbeat.interval.ms", b.GroupConsumerHeartbeatIntervalMs,
		b.GroupConsumerMinHeartbeatIntervalMs, b.GroupConsumerMaxHeartbeatIntervalMs,
		"group.consumer.min.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms"); err != nil {
		return err
	}
	if b.GroupConsumerHeartbeatIntervalMs >= b.GroupConsumerSessionTimeoutMs {
		return &Error{Key: "group.consumer.heartbeat.interval.ms", Msg: fmt.Sprintf(
			"group.consumer.heartbeat.interval.ms (%d) must be less than group.consumer.session.timeout.ms (%d)",
			b.GroupConsumerHeartbeatIntervalMs, b.GroupConsumerSessionTimeoutMs)}
	}
	return nil
}
