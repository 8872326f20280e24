package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func TestFranzProduceConsume(t *testing.T) {
	b := startBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b.addr))

	created, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"segment.bytes": kadm.StringPtr("100000")}, "orders")
	if err != nil || created.Err != nil {
		t.Fatalf("create topic: %v %v", err, created.Err)
	}
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err == nil {
		if r, _ := adm.CreateTopic(ctx, 3, 1, nil, "orders"); r.Err == nil {
			t.Fatal("creating an existing topic succeeded")
		}
	}

	const n = 3000
	prod := newClient(t, b.addr, kgo.DefaultProduceTopic("orders"), kgo.RequiredAcks(kgo.AllISRAcks()))
	sent := map[string]bool{}
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("value-%05d", i)
		sent[v] = true
		prod.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(v)}, func(r *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	ends, err := adm.ListEndOffsets(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != n {
		t.Fatalf("end offsets sum to %d, want %d", total, n)
	}

	cons := newClient(t, b.addr, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !sent[string(r.Value)] {
				t.Errorf("unexpected record %q at %d/%d", r.Value, r.Partition, r.Offset)
			}
			delete(sent, string(r.Value))
			got++
		})
	}
	if len(sent) != 0 {
		t.Fatalf("%d records not consumed", len(sent))
	}

	rc, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := rc.On("orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Configs {
		if c.Key == "segment.bytes" && (c.MaybeValue() != "100000" || c.Source.String() != "DYNAMIC_TOPIC_CONFIG") {
			t.Fatalf("segment.bytes described as %v from %v", c.MaybeValue(), c.Source)
		}
	}
}

// TestPageCacheMode runs with Kafka's flush behaviour: acknowledgement after
// the write, fsync only every flush.ms.
func TestPageCacheMode(t *testing.T) {
	b := startBroker(t, "", "--override", "log.flush.interval.messages=9223372036854775807",
		"--override", "log.flush.interval.ms=50")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prod := newClient(t, b.addr, kgo.DefaultProduceTopic("pc"), kgo.AllowAutoTopicCreation())
	const n = 500
	for i := 0; i < n; i++ {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cons := newClient(t, b.addr, kgo.ConsumeTopics("pc"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) != fmt.Sprint(got) {
				t.Fatalf("record %d is %q", got, r.Value)
			}
			got++
		})
	}
}

// TestDeleteThenRecreate re-creates a topic under the name of one being
// deleted. The old directories must be gone before the name is reused, or
// the new topic's writes would queue behind their removal and fail.
func TestDeleteThenRecreate(t *testing.T) {
	b := startBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, b.addr)
	adm := kadm.NewClient(cl)
	for round := 0; round < 20; round++ {
		if r, err := adm.CreateTopic(ctx, 2, 1, nil, "again"); err != nil || r.Err != nil {
			// The previous round's deletion may still be running.
			if !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				t.Fatalf("round %d: create: %v %v", round, err, r.Err)
			}
			time.Sleep(5 * time.Millisecond)
			round--
			continue
		}
		// A fresh client: franz-go fails records for a topic whose id
		// changed under it, as a re-created topic's does.
		prod, err := kgo.NewClient(kgo.SeedBrokers(b.addr))
		if err != nil {
			t.Fatal(err)
		}
		err = prod.ProduceSync(ctx, &kgo.Record{Topic: "again", Value: []byte("x")}).FirstErr()
		prod.Close()
		if err != nil {
			t.Fatalf("round %d: produce: %v", round, err)
		}
		del := kmsg.NewPtrDeleteTopicsRequest()
		del.TimeoutMillis = 0 // answer before the deletion is durable
		name := "again"
		dt := kmsg.NewDeleteTopicsRequestTopic()
		dt.Topic = &name
		del.Topics, del.TopicNames = []kmsg.DeleteTopicsRequestTopic{dt}, []string{name} // v6+, older
		resp, err := del.RequestWith(ctx, cl)
		if err != nil || len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
			t.Fatalf("round %d: delete: %v %+v", round, err, resp)
		}
	}
}

// TestDescribeLogDirs asks kadm for the broker's log directory: it lists
// every partition replica the broker holds, with its size on disk.
func TestDescribeLogDirs(t *testing.T) {
	b := startBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b.addr))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "dirs"); err != nil {
		t.Fatal(err)
	}
	prod := newClient(t, b.addr, kgo.DefaultProduceTopic("dirs"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte("hello"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dirs, err := adm.DescribeBrokerLogDirs(ctx, 1, kadm.TopicsSet{"dirs": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) != 1 {
		t.Fatalf("%d log dirs, want 1: %v", len(dirs), dirs)
	}
	for _, d := range dirs {
		if d.Err != nil {
			t.Fatalf("dir %s: %v", d.Dir, d.Err)
		}
		parts := d.Topics["dirs"]
		if len(parts) != 2 || parts[0].Size != 0 || parts[1].Size <= 0 {
			t.Fatalf("dir %s: partitions %+v, want 0 empty and 1 holding the record", d.Dir, parts)
		}
	}
}
