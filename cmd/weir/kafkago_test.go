package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestKafkaGoProduceConsume runs segmentio/kafka-go against a real broker:
// topics are created through both kafka.Client and kafka.Conn, a Writer with
// acks=all writes keyed records with headers, and one groupless Reader per
// partition reads them back from the first offset, byte for byte. Offsets
// and lag are checked through Conn.ReadOffsets, Client.ListOffsets and
// Reader.ReadLag.
func TestKafkaGoProduceConsume(t *testing.T) {
	b := startBroker(t, "")
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	const (
		topic      = "kafkago-orders"
		partitions = 3
		n          = 500
	)
	addr := kafka.TCP(b.addr)
	client := &kafka.Client{Addr: addr, Timeout: 10 * time.Second}

	// Create through the Client (CreateTopics negotiated up to v5).
	created, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{
			Topic:             topic,
			NumPartitions:     partitions,
			ReplicationFactor: 1,
			ConfigEntries:     []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "3600000"}},
		}},
	})
	if err != nil {
		t.Fatalf("create topics: %v", err)
	}
	if err := created.Errors[topic]; err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	again, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatalf("create topics again: %v", err)
	}
	if err := again.Errors[topic]; !errors.Is(err, kafka.TopicAlreadyExists) {
		t.Fatalf("creating an existing topic: got %v, want %v", err, kafka.TopicAlreadyExists)
	}
	described, err := client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
		Resources: []kafka.DescribeConfigRequestResource{{
			ResourceType: kafka.ResourceTypeTopic,
			ResourceName: topic,
			ConfigNames:  []string{"retention.ms"},
		}},
	})
	if err != nil || len(described.Resources) != 1 || described.Resources[0].Error != nil ||
		len(described.Resources[0].ConfigEntries) != 1 || described.Resources[0].ConfigEntries[0].ConfigValue != "3600000" {
		t.Fatalf("describe configs: %v %+v", err, described)
	}

	// Create through a Conn to the controller (CreateTopics v0-v2).
	conn, err := kafka.DialContext(ctx, "tcp", b.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	controller, err := conn.Controller()
	if err != nil {
		t.Fatalf("controller: %v", err)
	}
	cconn, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	if err != nil {
		t.Fatalf("dial controller: %v", err)
	}
	defer cconn.Close()
	if err := cconn.CreateTopics(kafka.TopicConfig{Topic: "kafkago-conn", NumPartitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatalf("conn create topics: %v", err)
	}
	parts, err := conn.ReadPartitions("kafkago-conn")
	if err != nil || len(parts) != 2 {
		t.Fatalf("read partitions of kafkago-conn: %v %+v", err, parts)
	}

	// Produce keyed records with headers and explicit timestamps.
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.UnixMilli(time.Now().UnixMilli())
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:   []byte(fmt.Sprintf("key-%03d", i%41)),
			Value: randomBytes(rng, rng.IntN(300)),
			Time:  base.Add(time.Duration(i) * time.Millisecond),
			Headers: []kafka.Header{
				{Key: "seq", Value: []byte(strconv.Itoa(i))},
				{Key: "bin", Value: randomBytes(rng, rng.IntN(20))},
				{Key: "seq", Value: []byte("repeated key")},
			},
		}
	}
	w := &kafka.Writer{
		Addr:         addr,
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		MaxAttempts:  3,
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("write messages: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}
	if st := w.Stats(); st.Messages != n || st.Errors != 0 {
		t.Fatalf("writer stats: %d messages, %d errors; want %d, 0", st.Messages, st.Errors, n)
	}

	// The records of each key, in the order written; the Hash balancer puts
	// one key on one partition, so this is each partition's order too.
	byKey := map[string][]*kafka.Message{}
	for i := range msgs {
		byKey[string(msgs[i].Key)] = append(byKey[string(msgs[i].Key)], &msgs[i])
	}

	// Offsets through ListOffsets v1 on a Conn to each leader, and through
	// the Client.
	ends := map[int]int64{}
	var total int64
	for p := 0; p < partitions; p++ {
		lc, err := kafka.DialLeader(ctx, "tcp", b.addr, topic, p)
		if err != nil {
			t.Fatalf("dial leader of %d: %v", p, err)
		}
		first, last, err := lc.ReadOffsets()
		lc.Close()
		if err != nil || first != 0 || last <= 0 {
			t.Fatalf("partition %d: offsets [%d, %d), %v", p, first, last, err)
		}
		ends[p] = last
		total += last
	}
	if total != n {
		t.Fatalf("end offsets sum to %d, want %d", total, n)
	}
	var reqs []kafka.OffsetRequest
	for p := 0; p < partitions; p++ {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	listed, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	if len(listed.Topics[topic]) != partitions {
		t.Fatalf("list offsets: %+v", listed.Topics)
	}
	for _, po := range listed.Topics[topic] {
		if po.Error != nil || po.FirstOffset != 0 || po.LastOffset != ends[po.Partition] {
			t.Fatalf("list offsets of partition %d: [%d, %d) %v; want [0, %d)", po.Partition, po.FirstOffset, po.LastOffset, po.Error, ends[po.Partition])
		}
	}

	// Consume each partition without a group, from the first offset.
	seen := map[string]int{}
	for p := 0; p < partitions; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   []string{b.addr},
			Topic:     topic,
			Partition: p,
			MinBytes:  1,
			MaxBytes:  1 << 20,
			MaxWait:   200 * time.Millisecond,
		})
		defer r.Close()
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			t.Fatalf("set offset: %v", err)
		}
		if lag, err := r.ReadLag(ctx); err != nil || lag != ends[p] {
			t.Fatalf("partition %d: lag before reading %d, %v; want %d", p, lag, err, ends[p])
		}
		for next := int64(0); next < ends[p]; next++ {
			got, err := r.ReadMessage(ctx)
			if err != nil {
				t.Fatalf("partition %d: read %d of %d: %v", p, next, ends[p], err)
			}
			if got.Partition != p || got.Offset != next || got.Topic != topic {
				t.Fatalf("read %s/%d/%d, want %s/%d/%d", got.Topic, got.Partition, got.Offset, topic, p, next)
			}
			k := string(got.Key)
			if seen[k] >= len(byKey[k]) {
				t.Fatalf("partition %d offset %d: unexpected record with key %q", p, next, k)
			}
			compareKafkaGo(t, &got, byKey[k][seen[k]])
			seen[k]++
		}
		if r.Offset() != ends[p] || r.Lag() != 0 {
			t.Fatalf("partition %d: reader at offset %d lag %d, want %d and 0", p, r.Offset(), r.Lag(), ends[p])
		}
		if lag, err := r.ReadLag(ctx); err != nil || lag != 0 {
			t.Fatalf("partition %d: lag after reading %d, %v; want 0", p, lag, err)
		}
	}
	for k, list := range byKey {
		if seen[k] != len(list) {
			t.Fatalf("key %q: read %d of %d records", k, seen[k], len(list))
		}
	}
}

// compareKafkaGo fails the test unless got carries exactly want's key,
// value, timestamp and headers.
func compareKafkaGo(t *testing.T, got, want *kafka.Message) {
	t.Helper()
	where := fmt.Sprintf("partition %d offset %d", got.Partition, got.Offset)
	if !bytes.Equal(got.Key, want.Key) {
		t.Fatalf("%s: key %q, want %q", where, got.Key, want.Key)
	}
	if !bytes.Equal(got.Value, want.Value) {
		t.Fatalf("%s: value %x, want %x", where, got.Value, want.Value)
	}
	if !got.Time.Equal(want.Time) {
		t.Fatalf("%s: time %v, want %v", where, got.Time, want.Time)
	}
	if len(got.Headers) != len(want.Headers) {
		t.Fatalf("%s: %d headers, want %d", where, len(got.Headers), len(want.Headers))
	}
	for i, h := range got.Headers {
		if h.Key != want.Headers[i].Key || !bytes.Equal(h.Value, want.Headers[i].Value) {
			t.Fatalf("%s: header %d is %q=%x, want %q=%x", where, i, h.Key, h.Value, want.Headers[i].Key, want.Headers[i].Value)
		}
	}
}
