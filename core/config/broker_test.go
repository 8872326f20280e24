package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustBroker(t *testing.T, values map[string]string) *Broker {
	t.Helper()
	b, unknown, err := NewBroker(values)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) > 0 {
		t.Fatalf("unexpected unknown keys %q", unknown)
	}
	return b
}

func TestBrokerDefaults(t *testing.T) {
	b := mustBroker(t, nil)
	want := []Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092, SecurityProtocol: "PLAINTEXT"}}
	switch {
	case b.NodeID != 1:
		t.Errorf("NodeID %d", b.NodeID)
	case !slices.Equal(b.Listeners, want), !slices.Equal(b.AdvertisedListeners, want):
		t.Errorf("listeners %v advertised %v", b.Listeners, b.AdvertisedListeners)
	case !slices.Equal(b.LogDirs, []string{"./weir-data"}) || b.MetadataLogDir != "./weir-data":
		t.Errorf("LogDirs %q MetadataLogDir %q", b.LogDirs, b.MetadataLogDir)
	case !slices.Equal(b.ProcessRoles, []string{"broker", "controller"}):
		t.Errorf("ProcessRoles %q", b.ProcessRoles)
	case b.NumPartitions != 1 || b.DefaultReplicationFactor != 1 || !b.AutoCreateTopics || !b.DeleteTopicEnable:
		t.Errorf("topic creation defaults %d %d %v %v", b.NumPartitions, b.DefaultReplicationFactor, b.AutoCreateTopics, b.DeleteTopicEnable)
	case b.SocketRequestMaxBytes != 104857600 || b.MessageMaxBytes != 1048588 || b.FetchMaxBytes != 57671680:
		t.Errorf("sizes %d %d %d", b.SocketRequestMaxBytes, b.MessageMaxBytes, b.FetchMaxBytes)
	case b.MaxIncrementalFetchSessionCacheSlots != 1000 || b.RetentionCheckIntervalMs != 300000 || b.ReplicaLagTimeMaxMs != 30000:
		t.Errorf("%d %d %d", b.MaxIncrementalFetchSessionCacheSlots, b.RetentionCheckIntervalMs, b.ReplicaLagTimeMaxMs)
	case b.OffsetsTopicNumPartitions != 50 || b.OffsetsTopicReplicationFactor != 3 || b.GroupInitialRebalanceDelayMs != 3000:
		t.Errorf("%d %d %d", b.OffsetsTopicNumPartitions, b.OffsetsTopicReplicationFactor, b.GroupInitialRebalanceDelayMs)
	case b.OffsetsRetentionMs != 7*24*hour || b.InterBrokerListenerName != "PLAINTEXT":
		t.Errorf("%d %q", b.OffsetsRetentionMs, b.InterBrokerListenerName)
	case b.TopicDefaults.FlushMessages != 1 || b.TopicDefaults.RetentionMs != 7*24*hour:
		t.Errorf("TopicDefaults %+v", b.TopicDefaults)
	}
	if len(b.Static()) != 0 {
		t.Errorf("Static() = %v, want empty", b.Static())
	}
}

func TestBrokerServerProperties(t *testing.T) {
	props, _, err := ParseProperties(serverProperties + "zookeeper.connect=localhost:2181\nretention.ms=5\n")
	if err != nil {
		t.Fatal(err)
	}
	b, unknown, err := NewBroker(props)
	if err != nil {
		t.Fatal(err)
	}
	if b.TopicDefaults.RetentionMs != 168*hour {
		t.Errorf("the topic key retention.ms changed the broker's default")
	}
	// Unknown keys, a topic key among them, are reported and ignored.
	if want := []string{"retention.ms", "zookeeper.connect"}; !slices.Equal(unknown, want) {
		t.Errorf("unknown keys %q, want %q", unknown, want)
	}
	wantListeners := []Listener{
		{Name: "PLAINTEXT", Port: 9092, SecurityProtocol: "PLAINTEXT"},
		{Name: "CONTROLLER", Port: 9093, SecurityProtocol: "PLAINTEXT"},
	}
	if !slices.Equal(b.Listeners, wantListeners) {
		t.Errorf("Listeners %v", b.Listeners)
	}
	if want := []Listener{{Name: "PLAINTEXT", Host: "localhost", Port: 9092, SecurityProtocol: "PLAINTEXT"}}; !slices.Equal(b.AdvertisedListeners, want) {
		t.Errorf("AdvertisedListeners %v", b.AdvertisedListeners)
	}
	if want := []Voter{{ID: 1, Host: "localhost", Port: 9093}}; !slices.Equal(b.ControllerQuorumVoters, want) {
		t.Errorf("voters %v", b.ControllerQuorumVoters)
	}
	if !slices.Equal(b.ControllerListenerNames, []string{"CONTROLLER"}) || b.InterBrokerListenerName != "PLAINTEXT" {
		t.Errorf("controller listeners %q, inter-broker %q", b.ControllerListenerNames, b.InterBrokerListenerName)
	}
	if !slices.Equal(b.LogDirs, []string{"/tmp/kraft-combined-logs"}) || b.OffsetsTopicReplicationFactor != 1 || b.TransactionStateLogMinISR != 1 {
		t.Errorf("LogDirs %q offsets RF %d txn min ISR %d", b.LogDirs, b.OffsetsTopicReplicationFactor, b.TransactionStateLogMinISR)
	}
	// Kafka copies node.id to its synonym broker.id; the file's keys are static.
	if !b.IsStatic("broker.id") || !b.IsStatic("log.retention.hours") || b.IsStatic("log.retention.ms") || b.IsStatic("zookeeper.connect") {
		t.Errorf("Static() = %v", b.Static())
	}
	// Static() is enough to rebuild the broker.
	again := mustBroker(t, b.Static())
	if !slices.Equal(again.Listeners, b.Listeners) || again.NodeID != b.NodeID {
		t.Errorf("rebuilt broker differs")
	}
}

func TestRetentionPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]string
		want   int64
	}{
		{"default 168 hours", nil, 168 * hour},
		{"hours", map[string]string{"log.retention.hours": "1"}, hour},
		{"minutes over hours", map[string]string{"log.retention.hours": "1", "log.retention.minutes": "2"}, 2 * minute},
		{"ms over minutes and hours", map[string]string{"log.retention.hours": "1", "log.retention.minutes": "2", "log.retention.ms": "3"}, 3},
		{"ms over default hours", map[string]string{"log.retention.ms": "1000"}, 1000},
		{"ms -1 is infinite", map[string]string{"log.retention.ms": "-1"}, -1},
		{"negative hours are infinite", map[string]string{"log.retention.hours": "-5"}, -1},
		{"negative minutes are infinite", map[string]string{"log.retention.minutes": "-1"}, -1},
		{"values are trimmed", map[string]string{"log.retention.minutes": " 10 "}, 10 * minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustBroker(t, tc.values).TopicDefaults.RetentionMs; got != tc.want {
				t.Errorf("RetentionMs = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRollPrecedence(t *testing.T) {
	for _, tc := range []struct {
		values             map[string]string
		wantMs, wantJitter int64
	}{
		{nil, 168 * hour, 0},
		{map[string]string{"log.roll.hours": "2", "log.roll.jitter.hours": "1"}, 2 * hour, hour},
		{map[string]string{"log.roll.hours": "2", "log.roll.ms": "500", "log.roll.jitter.hours": "1", "log.roll.jitter.ms": "7"}, 500, 7},
	} {
		d := mustBroker(t, tc.values).TopicDefaults
		if d.SegmentMs != tc.wantMs || d.SegmentJitterMs != tc.wantJitter {
			t.Errorf("%v: SegmentMs %d SegmentJitterMs %d, want %d %d", tc.values, d.SegmentMs, d.SegmentJitterMs, tc.wantMs, tc.wantJitter)
		}
	}
}

func TestFlushMsFallsBackToScheduler(t *testing.T) {
	b := mustBroker(t, map[string]string{"log.flush.scheduler.interval.ms": "2000"})
	if b.TopicDefaults.FlushMs != 2000 {
		t.Errorf("FlushMs = %d", b.TopicDefaults.FlushMs)
	}
	b = mustBroker(t, map[string]string{"log.flush.scheduler.interval.ms": "2000", "log.flush.interval.ms": "100"})
	if b.TopicDefaults.FlushMs != 100 {
		t.Errorf("FlushMs = %d", b.TopicDefaults.FlushMs)
	}
}

func TestBrokerInvalid(t *testing.T) {
	for _, tc := range []struct {
		values  map[string]string
		key     string // the key the error must name
		message string // and a part of its message
	}{
		{map[string]string{"log.retention.hours": "a week"}, "log.retention.hours", "not a number of type INT"},
		{map[string]string{"num.partitions": "0"}, "num.partitions", "at least 1"},
		{map[string]string{"num.partitions": "3000000000"}, "num.partitions", "out of range"},
		{map[string]string{"default.replication.factor": "40000"}, "default.replication.factor", "between"},
		{map[string]string{"auto.create.topics.enable": "yes"}, "auto.create.topics.enable", "true or false"},
		{map[string]string{"log.cleanup.policy": "compact,shred"}, "log.cleanup.policy", "one of"},
		{map[string]string{"log.cleaner.min.cleanable.ratio": "1.5"}, "log.cleaner.min.cleanable.ratio", "between 0 and 1"},
		{map[string]string{"log.cleaner.min.cleanable.ratio": "NaN"}, "log.cleaner.min.cleanable.ratio", "DOUBLE"},
		{map[string]string{"compression.type": "brotli"}, "compression.type", "one of"},
		{map[string]string{"listeners": "localhost:9092"}, "listeners", "NAME://host:port"},
		{map[string]string{"listeners": "PLAINTEXT://:99999"}, "listeners", "port"},
		{map[string]string{"listeners": "PLAINTEXT://:1,plaintext://:2"}, "listeners", "twice"},
		{map[string]string{"listeners": "EXTERNAL://:9092"}, "listener.security.protocol.map", "EXTERNAL"},
		{map[string]string{"advertised.listeners": "SSL://h:1"}, "advertised.listeners", "not in listeners"},
		{map[string]string{"inter.broker.listener.name": "INTERNAL"}, "inter.broker.listener.name", "advertised"},
		{map[string]string{"inter.broker.listener.name": "PLAINTEXT", "security.inter.broker.protocol": "PLAINTEXT"}, "inter.broker.listener.name", "only one"},
		{map[string]string{"node.id": "1", "broker.id": "2"}, "node.id", "must be equal"},
		{map[string]string{"process.roles": "broker"}, "controller.quorum.voters", "quorum"},
		{map[string]string{"process.roles": "observer"}, "process.roles", "one of"},
		{map[string]string{"process.roles": "broker,broker"}, "process.roles", "twice"},
		{map[string]string{"controller.quorum.voters": "1@h:9093"}, "controller.listener.names", "must be set"},
		{map[string]string{"controller.quorum.voters": "1@:9093"}, "controller.quorum.voters", "no host"},
		{map[string]string{"controller.quorum.voters": "2@h:9093", "controller.listener.names": "CONTROLLER", "listeners": "PLAINTEXT://:9092,CONTROLLER://:9093"}, "controller.quorum.voters", "not in controller.quorum.voters"},
		{map[string]string{"controller.quorum.voters": "1@h:9093", "controller.listener.names": "CONTROLLER"}, "controller.listener.names", "not in listeners"},
		{map[string]string{"log.dirs": " , "}, "log.dirs", "at least one directory"},
		{map[string]string{"cluster.id": "my-cluster"}, "cluster.id", "UUID"},
		{map[string]string{"group.min.session.timeout.ms": "10", "group.max.session.timeout.ms": "5"}, "group.min.session.timeout.ms", "must not exceed"},
		{map[string]string{"replica.fetch.wait.max.ms": "40000"}, "replica.fetch.wait.max.ms", "replica.lag.time.max.ms"},
		{map[string]string{"log.cleaner.min.compaction.lag.ms": "10", "log.cleaner.max.compaction.lag.ms": "5"}, "min.compaction.lag.ms", "conflicting"},
	} {
		_, _, err := NewBroker(tc.values)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("%v: err = %v, want *Error", tc.values, err)
			continue
		}
		if ce.Key != tc.key || !strings.Contains(ce.Msg, tc.key) || !strings.Contains(ce.Msg, tc.message) {
			t.Errorf("%v: error (key %s) %q, want key %s and %q", tc.values, ce.Key, ce.Msg, tc.key, tc.message)
		}
	}
}

func TestBrokerListenerForms(t *testing.T) {
	b := mustBroker(t, map[string]string{
		"listeners":                      "plaintext://[::1]:9092 , SSL://0.0.0.0:0,CONTROLLER://:9093",
		"controller.listener.names":      "controller",
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SSL",
		"controller.quorum.voters":       "1@[::1]:9093,2@b:9093",
		"log.dirs":                       "/d1, /d2,",
		"metadata.log.dir":               "/meta",
		"cluster.id":                     "MkU3OEVBNTcwNTJENDM2Qg",
	})
	want := []Listener{
		{Name: "PLAINTEXT", Host: "::1", Port: 9092, SecurityProtocol: "PLAINTEXT"},
		{Name: "SSL", Host: "0.0.0.0", Port: 0, SecurityProtocol: "SSL"},
		{Name: "CONTROLLER", Port: 9093, SecurityProtocol: "SSL"},
	}
	if !slices.Equal(b.Listeners, want) {
		t.Errorf("Listeners %v", b.Listeners)
	}
	if !slices.Equal(b.AdvertisedListeners, want[:2]) {
		t.Errorf("AdvertisedListeners %v: want listeners without the controller's", b.AdvertisedListeners)
	}
	if got := b.Listeners[0].String() + " " + b.ControllerQuorumVoters[0].String(); got != "PLAINTEXT://[::1]:9092 1@[::1]:9093" {
		t.Errorf("String() = %q", got)
	}
	if !slices.Equal(b.LogDirs, []string{"/d1", "/d2"}) || b.MetadataLogDir != "/meta" || b.ClusterID != "MkU3OEVBNTcwNTJENDM2Qg" {
		t.Errorf("LogDirs %q MetadataLogDir %q ClusterID %q", b.LogDirs, b.MetadataLogDir, b.ClusterID)
	}
}

// A broker-only node joins a quorum; broker.id alone sets node.id.
func TestBrokerOnlyNode(t *testing.T) {
	b := mustBroker(t, map[string]string{
		"process.roles":                       "broker",
		"broker.id":                           "7",
		"controller.quorum.bootstrap.servers": "c1:9093,c2:9093",
		"controller.listener.names":           "CONTROLLER",
	})
	if b.NodeID != 7 || !b.IsStatic("node.id") {
		t.Errorf("NodeID %d static %v", b.NodeID, b.IsStatic("node.id"))
	}
}

// The Weir durability default and the key that restores Kafka's behaviour.
func TestFlushDefault(t *testing.T) {
	if got := mustBroker(t, nil).TopicDefaults.FlushMessages; got != 1 {
		t.Errorf("default FlushMessages = %d, want 1 (fsync before ack)", got)
	}
	b := mustBroker(t, map[string]string{"log.flush.interval.messages": "9223372036854775807"})
	if got := b.TopicDefaults.FlushMessages; got != 1<<63-1 {
		t.Errorf("FlushMessages = %d, want Kafka's Long.MAX_VALUE", got)
	}
}
