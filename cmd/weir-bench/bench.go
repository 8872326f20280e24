package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchTarget is what one run benchmarks.
type benchTarget struct {
	target, name string // the set the run belongs to, and as reported
	seeds        []string
	topic        string
	// pids are the broker processes whose CPU time is measured (none:
	// not measured).
	pids []int
	// isr, if set, returns the smallest ISR of the topic's partitions; it
	// is called right after producing.
	isr func() (int, error)
	// warm is how many records each partition held before the run (the
	// warm-up records); they are skipped, not counted, when consuming.
	warm int64
}

// bench produces then consumes o.records records on one target.
func bench(ctx context.Context, o options, t benchTarget, batchMax int32, codec kgo.Opt) (result, error) {
	r := result{target: t.target, name: t.name}
	seeds, topic, pids := t.seeds, t.topic, t.pids
	logf := func(format string, args ...any) {
		if o.verbose {
			fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{t.name}, args...)...)
		}
	}

	// Values are windows on one random buffer: incompressible, and cheap
	// to make so that the client's own work stays small.
	pool := make([]byte, 4<<20+o.size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range pool {
		pool[i] = byte(rng.Uint32())
	}

	popts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), // the default; idempotence stays on
		kgo.ProducerBatchMaxBytes(batchMax),
	}
	if codec != nil {
		popts = append(popts, codec)
	}
	prod, err := kgo.NewClient(popts...)
	if err != nil {
		return r, err
	}
	// Every latencyEvery-th record is timed, from its Produce call to its
	// promise, into a slot of a slice allocated up front; the percentiles
	// are computed after the timed run. The send time travels in the
	// record's own allocation (timedRecord) and the promises are shared,
	// so measuring allocates nothing; sampling keeps the clock reads and
	// bookkeeping off most records, which matters with kfake, whose every
	// cost is this process's.
	st := &produceState{latencies: make([]time.Duration, o.records/latencyEvery+1)}
	timed, plain := st.timed, st.plain
	logf("producing %d records of %d bytes", o.records, o.size)
	cpu0, self0 := cpuTime(pids...), cpuTime(os.Getpid())
	start := time.Now()
	for i := 0; i < o.records; i++ {
		off := (i * 7919) % (len(pool) - o.size)
		value := pool[off : off+o.size : off+o.size]
		if i%latencyEvery != 0 {
			prod.Produce(ctx, &kgo.Record{Value: value}, plain)
			continue
		}
		// The client would stamp the record with time.Now() itself when
		// Produce starts (truncated to milliseconds, in place); stamping
		// it here instead spares the client its clock read, and a copy
		// keeps the full-resolution monotonic reading for the latency.
		sent := time.Now()
		rec := &timedRecord{Record: kgo.Record{Value: value, Timestamp: sent}, sent: sent}
		prod.Produce(ctx, &rec.Record, timed)
	}
	if err := prod.Flush(ctx); err != nil {
		prod.Close()
		return r, fmt.Errorf("flush: %w", err)
	}
	r.produce = time.Since(start)
	r.produceCPU, r.selfProduceCPU = cpuTime(pids...)-cpu0, cpuTime(os.Getpid())-self0
	prod.Close()
	if n := st.failed.Load(); n > 0 {
		return r, fmt.Errorf("%d records failed to produce, the first with: %w", n, st.firstErr)
	}
	lat := st.latencies[:st.acked.Load()]
	slices.Sort(lat)
	r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
	logf("produced in %v, latency p50 %v p99 %v", r.produce, r.p50, r.p99)

	// Not timed: the end offsets must add up to exactly what was produced,
	// and (replicated) no ISR may have shrunk, or acks=all would have
	// waited for fewer replicas than the report claims.
	if t.isr != nil {
		if r.minISRAfter, err = t.isr(); err != nil {
			return r, fmt.Errorf("after producing: %w", err)
		}
		logf("smallest ISR after producing: %d", r.minISRAfter)
	}
	if err := checkEndOffsets(ctx, seeds, topic, int64(o.records)+int64(o.partitions)*t.warm); err != nil {
		return r, err
	}

	logf("consuming")
	cpu0, self0 = cpuTime(pids...), cpuTime(os.Getpid())
	start = time.Now()
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return r, err
	}
	defer cons.Close()
	next := map[int32]int64{}
	got := 0
	var bad error
	for got < o.records && bad == nil {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("consume: %d of %d records: %w", got, o.records, err)
		}
		if err := fs.Err0(); err != nil {
			return r, fmt.Errorf("consume: %w", err)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			switch {
			case bad != nil:
			case rec.Offset < t.warm:
				if string(rec.Value) != warmValue {
					bad = fmt.Errorf("consume: partition %d offset %d: not the warm-up record", rec.Partition, rec.Offset)
				}
				next[rec.Partition]++
				return
			case rec.Offset != next[rec.Partition]:
				bad = fmt.Errorf("consume: partition %d: offset %d, want %d", rec.Partition, rec.Offset, next[rec.Partition])
			case len(rec.Value) != o.size:
				bad = fmt.Errorf("consume: partition %d offset %d: %d bytes, want %d", rec.Partition, rec.Offset, len(rec.Value), o.size)
			}
			next[rec.Partition]++
			got++
		})
	}
	r.consume = time.Since(start)
	r.consumeCPU, r.selfConsumeCPU = cpuTime(pids...)-cpu0, cpuTime(os.Getpid())-self0
	if bad != nil {
		return r, bad
	}
	if got != o.records {
		return r, fmt.Errorf("consume: %d records, want %d", got, o.records)
	}
	logf("consumed in %v", r.consume)
	return r, nil
}

// latencyEvery: one record in latencyEvery has its produce latency measured.
const latencyEvery = 8

// timedRecord is a record with the time its Produce was called.
type timedRecord struct {
	kgo.Record // first, so that a *kgo.Record of a timedRecord points to it
	sent       time.Time
}

// produceState collects the producer's promises.
type produceState struct {
	latencies []time.Duration // of acknowledged timed records, the first acked in use
	acked     atomic.Int64
	failed    atomic.Int64
	errOnce   sync.Once
	firstErr  error
}

// plain is the promise of a record that is not timed.
func (st *produceState) plain(_ *kgo.Record, err error) {
	if err != nil {
		st.failed.Add(1)
		st.errOnce.Do(func() { st.firstErr = err })
	}
}

// timed is the promise of a record produced as a timedRecord.
func (st *produceState) timed(r *kgo.Record, err error) {
	if err != nil {
		st.plain(r, err)
		return
	}
	// The record is the first field of the timedRecord it was produced
	// as, at the same address.
	sent := (*timedRecord)(unsafe.Pointer(r)).sent
	st.latencies[st.acked.Add(1)-1] = time.Since(sent)
}

// percentile returns the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (len(sorted)*p + 99) / 100 // ⌈n·p/100⌉, 1-based
	return sorted[max(rank, 1)-1]
}

// createTopic creates topic with the given partitions, replication factor
// and configs through the brokers at seeds.
func createTopic(ctx context.Context, seeds []string, topic string, partitions, rf int, configs map[string]*string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), int16(rf), configs, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// deleteTopic deletes topic through the brokers at seeds.
func deleteTopic(ctx context.Context, seeds []string, topic string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopic(ctx, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// warmValue is the value of the warm-up records.
const warmValue = "weir-bench warm-up"

// warmUp produces one record to each partition of topic with acks=all and
// waits for them: once each is acknowledged, every partition's followers
// are fetching.
func warmUp(ctx context.Context, seeds []string, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var recs []*kgo.Record
	for p := range partitions {
		recs = append(recs, &kgo.Record{Partition: int32(p), Value: []byte(warmValue)})
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// checkEndOffsets verifies that topic's end offsets add up to want.
func checkEndOffsets(ctx context.Context, seeds []string, topic string, want int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	var total int64
	var listErr error
	ends.Each(func(o kadm.ListedOffset) {
		total += o.Offset
		if o.Err != nil && listErr == nil {
			listErr = o.Err
		}
	})
	if listErr != nil {
		return fmt.Errorf("list end offsets: %w", listErr)
	}
	if total != want {
		return fmt.Errorf("end offsets add up to %d after producing %d records", total, want)
	}
	return nil
}
