package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type position struct {
	partition int32
	offset    int64
}

// TestCrashKeepsAcknowledged kills the broker with SIGKILL while an acks=all
// producer runs, several times, restarting it on the same data each time,
// and then requires every acknowledged record at its acknowledged offset,
// with no record stored twice.
func TestCrashKeepsAcknowledged(t *testing.T) {
	b := startBroker(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, b.addr))
	if r, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"segment.bytes": kadm.StringPtr("65536")}, "crash"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}

	var mu sync.Mutex
	acked := map[position]string{}
	seq := 0
	for round := 0; round < 3; round++ {
		prod, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DefaultProduceTopic("crash"),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(3), kgo.ProduceRequestTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		// Produce blocks while the client's buffer is full, as it will be
		// once the broker is dead: cancelling the round's context frees it.
		roundCtx, cancelRound := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if roundCtx.Err() != nil {
					return
				}
				mu.Lock()
				seq++
				v := fmt.Sprintf("r%d-%07d", round, seq)
				mu.Unlock()
				prod.Produce(roundCtx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
					if err == nil {
						mu.Lock()
						acked[position{r.Partition, r.Offset}] = string(r.Value)
						mu.Unlock()
					}
				})
			}
		}()
		// Let acknowledgements accumulate, then crash mid-stream.
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			n := len(acked)
			mu.Unlock()
			if n >= 2000*(round+1) || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		b.kill()
		cancelRound()
		wg.Wait()
		prod.Close()
		b.restart()
	}

	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 2000 {
		t.Fatalf("only %d records were acknowledged; the test needs more to mean something", len(acked))
	}
	ends, err := adm.ListEndOffsets(ctx, "crash")
	if err != nil {
		t.Fatal(err)
	}
	cons := newClient(t, b.addr, kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	stored := map[position]string{}
	seen := map[string]position{}
	remaining := int64(0)
	ends.Each(func(o kadm.ListedOffset) { remaining += o.Offset })
	for remaining > 0 {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			p := position{r.Partition, r.Offset}
			if prev, dup := seen[string(r.Value)]; dup {
				t.Errorf("record %q stored twice, at %v and %v", r.Value, prev, p)
			}
			seen[string(r.Value)] = p
			stored[p] = string(r.Value)
			remaining--
		})
	}
	for p, v := range acked {
		if stored[p] != v {
			t.Errorf("acknowledged %q at partition %d offset %d, found %q", v, p.partition, p.offset, stored[p])
		}
	}
	t.Logf("%d acknowledged records survived 3 SIGKILLs; %d stored in all", len(acked), len(stored))
	if code := b.stop(); code != 0 {
		t.Fatalf("SIGTERM exit code %d", code)
	}
}

// TestStrayPartitionsSetAside loses the metadata log of a node that holds
// records: the partition directories it finds are renamed aside with their
// data, not deleted, and a topic created again under the same name starts
// empty in a directory of its own.
func TestStrayPartitionsSetAside(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := newClient(t, b.addr)
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "lost"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lost", Value: []byte("old")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if code := b.stop(); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if err := os.RemoveAll(filepath.Join(dir, "__cluster_metadata-0")); err != nil {
		t.Fatal(err)
	}
	b.restart()
	cl = newClient(t, b.addr)
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "lost"); err != nil || r.Err != nil {
		t.Fatalf("create again: %v %v", err, r.Err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "lost", Value: []byte("new")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	strays, _ := filepath.Glob(filepath.Join(dir, "lost-0.*-stray", "*.log"))
	if len(strays) != 1 {
		t.Fatalf("want the old partition set aside with its segment, found %v", strays)
	}
	if old, err := os.ReadFile(strays[0]); err != nil || !bytes.Contains(old, []byte("old")) {
		t.Fatalf("the set-aside segment lost its record: %v", err)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.ConsumeTopics("lost"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fetches := cons.PollFetches(ctx)
	var got []string
	fetches.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	if len(got) != 1 || got[0] != "new" {
		t.Fatalf("the recreated topic holds %q, want only \"new\"", got)
	}
}
