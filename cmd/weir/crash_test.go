package main

import (
	"context"
	"fmt"
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
