package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// saramaVersions are the protocol versions the sarama test runs at: the
// client's default, a recent release, and the newest it knows. Sarama
// negotiates each request down to what ApiVersions advertises.
var saramaVersions = []struct {
	name    string
	version sarama.KafkaVersion
}{
	{"default", sarama.DefaultVersion},
	{"V3_6_0_0", sarama.V3_6_0_0},
	{"max", sarama.MaxVersion},
}

// saramaMessage is one record the sarama test sends, with what the broker
// acknowledged for it.
type saramaMessage struct {
	key, value []byte
	headers    []sarama.RecordHeader
	timestamp  time.Time
	partition  int32
	offset     int64
}

// TestSaramaAdminProduceConsume runs IBM/sarama against a real broker: a
// ClusterAdmin creates and describes a topic, an idempotent SyncProducer with
// acks=all writes keyed records with headers, and a plain (groupless)
// Consumer reads every partition back from the oldest offset and compares
// each record byte for byte; GetOffset agrees with what was produced.
func TestSaramaAdminProduceConsume(t *testing.T) {
	for _, v := range saramaVersions {
		t.Run(v.name, func(t *testing.T) { testSarama(t, v.version) })
	}
}

func testSarama(t *testing.T, version sarama.KafkaVersion) {
	b := startBroker(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	const (
		topic      = "sarama-orders"
		partitions = 3
		n          = 500
	)

	cfg := sarama.NewConfig()
	cfg.Version = version
	cfg.ClientID = "weir-sarama-test"
	cfg.Admin.Timeout = 10 * time.Second
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 5
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	addrs := []string{b.addr}

	client, err := sarama.NewClient(addrs, cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	retention := "3600000"
	err = admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions:     partitions,
		ReplicationFactor: 1,
		ConfigEntries:     map[string]*string{"retention.ms": &retention},
	}, false)
	if err != nil {
		t.Fatalf("create topic: %v", err)
	}
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err == nil {
		t.Fatal("creating an existing topic succeeded")
	} else if te, ok := err.(*sarama.TopicError); !ok || te.Err != sarama.ErrTopicAlreadyExists {
		t.Fatalf("creating an existing topic: got %v, want TOPIC_ALREADY_EXISTS", err)
	}
	topics, err := admin.DescribeTopics([]string{topic})
	if err != nil || len(topics) != 1 || topics[0].Err != sarama.ErrNoError || len(topics[0].Partitions) != partitions {
		t.Fatalf("describe topics: %v %+v", err, topics)
	}
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		t.Fatalf("describe config: %v", err)
	}
	described := map[string]sarama.ConfigEntry{}
	for _, e := range entries {
		described[e.Name] = e
	}
	if e, ok := described["retention.ms"]; !ok || e.Value != retention || e.Default {
		t.Fatalf("retention.ms described as %+v (present %v), want %s set on the topic", e, ok, retention)
	} else if version.IsAtLeast(sarama.V1_1_0_0) && e.Source != sarama.SourceTopic {
		t.Fatalf("retention.ms source %v, want %v", e.Source, sarama.SourceTopic)
	}
	if e, ok := described["cleanup.policy"]; !ok || e.Value != "delete" {
		t.Fatalf("cleanup.policy described as %+v (present %v), want the default delete", e, ok)
	}

	// Produce: keyed records with headers, random bytes, explicit timestamps.
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := make([]*saramaMessage, n)
	pms := make([]*sarama.ProducerMessage, n)
	base := time.UnixMilli(time.Now().UnixMilli())
	for i := range msgs {
		m := &saramaMessage{
			key:       []byte(fmt.Sprintf("key-%03d", i%37)),
			value:     randomBytes(rng, rng.IntN(300)),
			timestamp: base.Add(time.Duration(i) * time.Millisecond),
			headers: []sarama.RecordHeader{
				{Key: []byte("seq"), Value: []byte(fmt.Sprint(i))},
				{Key: []byte("bin"), Value: randomBytes(rng, rng.IntN(20))},
				{Key: []byte("seq"), Value: []byte("repeated key")},
			},
		}
		msgs[i] = m
		pms[i] = &sarama.ProducerMessage{
			Topic:     topic,
			Key:       sarama.ByteEncoder(m.key),
			Value:     sarama.ByteEncoder(m.value),
			Headers:   m.headers,
			Timestamp: m.timestamp,
			Metadata:  i,
		}
	}
	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("sync producer: %v", err)
	}
	// One record alone, then the rest in one call so that they batch.
	if p, o, err := producer.SendMessage(pms[0]); err != nil {
		t.Fatalf("send message: %v", err)
	} else {
		msgs[0].partition, msgs[0].offset = p, o
	}
	if err := producer.SendMessages(pms[1:]); err != nil {
		t.Fatalf("send messages: %v", err)
	}
	if err := producer.Close(); err != nil {
		t.Fatalf("close producer: %v", err)
	}
	for i, pm := range pms[1:] {
		msgs[i+1].partition, msgs[i+1].offset = pm.Partition, pm.Offset
	}

	// Offsets must be unique and dense per partition: 0..count-1.
	byPart := map[int32]map[int64]*saramaMessage{}
	keyPart := map[string]int32{}
	for _, m := range msgs {
		if m.partition < 0 || m.partition >= partitions {
			t.Fatalf("record acknowledged on partition %d", m.partition)
		}
		if p, ok := keyPart[string(m.key)]; ok && p != m.partition {
			t.Fatalf("key %q went to partitions %d and %d", m.key, p, m.partition)
		}
		keyPart[string(m.key)] = m.partition
		if byPart[m.partition] == nil {
			byPart[m.partition] = map[int64]*saramaMessage{}
		}
		if other := byPart[m.partition][m.offset]; other != nil {
			t.Fatalf("partition %d offset %d acknowledged twice", m.partition, m.offset)
		}
		byPart[m.partition][m.offset] = m
	}
	for p := int32(0); p < partitions; p++ {
		for o := int64(0); o < int64(len(byPart[p])); o++ {
			if byPart[p][o] == nil {
				t.Fatalf("partition %d: offsets not dense, %d missing of %d", p, o, len(byPart[p]))
			}
		}
		oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil || oldest != 0 {
			t.Fatalf("partition %d: oldest offset %d, %v; want 0", p, oldest, err)
		}
		newest, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil || newest != int64(len(byPart[p])) {
			t.Fatalf("partition %d: newest offset %d, %v; want %d", p, newest, err, len(byPart[p]))
		}
	}

	// Consume each partition from the oldest offset, without a group.
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	for p := int32(0); p < partitions; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume partition %d: %v", p, err)
		}
		want := int64(len(byPart[p]))
		for next := int64(0); next < want; next++ {
			var got *sarama.ConsumerMessage
			select {
			case got = <-pc.Messages():
			case err := <-pc.Errors():
				t.Fatalf("partition %d: %v", p, err)
			case <-ctx.Done():
				t.Fatalf("partition %d: %d of %d records read: %v", p, next, want, ctx.Err())
			}
			if got.Offset != next {
				t.Fatalf("partition %d: read offset %d, want %d", p, got.Offset, next)
			}
			compareSarama(t, got, byPart[p][next])
		}
		if hw := pc.HighWaterMarkOffset(); hw != want {
			t.Fatalf("partition %d: high watermark %d, want %d", p, hw, want)
		}
		if err := pc.Close(); err != nil {
			t.Fatalf("close partition consumer %d: %v", p, err)
		}
	}
}

// compareSarama fails the test unless got is exactly the record m.
func compareSarama(t *testing.T, got *sarama.ConsumerMessage, m *saramaMessage) {
	t.Helper()
	where := fmt.Sprintf("partition %d offset %d", got.Partition, got.Offset)
	if got.Topic == "" || got.Partition != m.partition {
		t.Fatalf("%s: topic %q partition %d, want partition %d", where, got.Topic, got.Partition, m.partition)
	}
	if !bytes.Equal(got.Key, m.key) {
		t.Fatalf("%s: key %q, want %q", where, got.Key, m.key)
	}
	if !bytes.Equal(got.Value, m.value) {
		t.Fatalf("%s: value %x, want %x", where, got.Value, m.value)
	}
	if !got.Timestamp.Equal(m.timestamp) {
		t.Fatalf("%s: timestamp %v, want %v", where, got.Timestamp, m.timestamp)
	}
	if len(got.Headers) != len(m.headers) {
		t.Fatalf("%s: %d headers, want %d", where, len(got.Headers), len(m.headers))
	}
	for i, h := range got.Headers {
		if !bytes.Equal(h.Key, m.headers[i].Key) || !bytes.Equal(h.Value, m.headers[i].Value) {
			t.Fatalf("%s: header %d is %q=%x, want %q=%x", where, i, h.Key, h.Value, m.headers[i].Key, m.headers[i].Value)
		}
	}
}

// randomBytes returns n bytes from rng.
func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
