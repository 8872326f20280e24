// Command weir-bench measures Weir's produce and consume throughput against
// franz-go's in-process fake cluster (kfake) as a baseline, with the same
// franz-go client settings for both, and the throughput of a replicated
// three-broker Weir cluster against the single Weir broker.
//
//	go run ./cmd/weir-bench [-records 1000000] [-size 100] [-partitions 8] [-target both] [-runs 3] [-page-cache]
//
// -target picks what runs: kfake, weir (one broker), replicated (three
// brokers, replication factor 3), a comma-separated list of these, both
// (kfake,weir: the default) or all (kfake,weir,replicated).
//
// For each target it produces -records records of -size random bytes with an
// idempotent acks=all kgo producer (client defaults for linger, batching and
// compression; -compression picks a codec for every target alike) and times
// the run from the first Produce to the end of Flush; the produce latency is
// the time from a record's Produce call to its promise, measured on every
// 8th record (a clock read per record would slow kfake, whose every cost is
// this process's, measurably). Then a fresh kgo
// client consumes every record from the start, timed from its creation until
// the last record arrives. The consumed records are checked: every offset of
// every partition once, each value -size bytes long, and the end offsets add
// up to -records. Targets alternate for -runs rounds (a fresh kfake cluster,
// a fresh topic on Weir, each round) and the report gives the median.
//
// Weir runs as a child process built from this module (so run the command
// from inside it) with a temporary log directory and its default
// fsync-before-acknowledge durability; -page-cache starts it with Kafka's
// page-cache behaviour instead (log.flush.interval.messages=MaxInt64).
// -weir-addr benchmarks a broker that is already running, for example one
// under a profiler (perf record -g -- weir ...); give -weir-pid too to report
// its CPU time and memory.
//
// The replicated target starts three Weir processes on loopback as one
// cluster (each a broker and a voter of the metadata quorum, like the README's
// three-node cluster), creates each round's topic with replication factor 3
// and min.insync.replicas=2, waits until every partition's ISR has all three
// brokers on every node's metadata and then, untimed, until one acks=all
// warm-up record per partition is acknowledged (the ISR is complete from the
// topic's creation, before the followers fetch, and a follower whose first
// fetch fails, as it may while the leader has not yet taken up the new
// partition, backs off replica.fetch.backoff.ms, 1 s). Then it runs the same producer (acks=all:
// the leader acknowledges once every ISR member has the batch on disk) and
// consumer as the other targets, the consumer skipping the warm-up records.
// It checks after producing that no ISR shrank, and deletes the topic after
// the round.
//
// The report is a table of records/s and MB/s (10^6 bytes of record values)
// and the p50/p99 produce latency per target, the Weir/kfake and
// replicated/Weir ratios, the CPU time per record of this process (the
// clients, and kfake when it is the target) and of the Weir processes, and
// Weir's peak resident memory (VmHWM from /proc/<pid>/status; for the
// replicated target the sum over its three processes, with each one's),
// checked against the acceptance bars: produce ≥ 0.7× kfake, consume ≥ 1.0×
// kfake, peak RSS < 500 MiB, replicated produce ≥ 0.4× single-node Weir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Acceptance bars from the benchmark issues.
const (
	minProduceRatio = 0.7
	minConsumeRatio = 1.0
	maxRSSBytes     = 500 << 20
	// replicated (three brokers, RF 3, acks=all) over single-node produce
	minReplicatedProduceRatio = 0.4
)

// The replicated target's cluster and topics.
const (
	replicatedNodes   = 3
	replicationFactor = 3
	replicatedMinISR  = 2
)

// kafkaDefaultMaxMessageBytes is Apache Kafka's (and Weir's) default
// message.max.bytes; larger batches need the brokers configured for them.
const kafkaDefaultMaxMessageBytes = 1048588

// The targets, in the order each round runs them and the report lists them.
const (
	targetKfake      = "kfake"
	targetWeir       = "weir"
	targetReplicated = "replicated"
)

var allTargets = []string{targetKfake, targetWeir, targetReplicated}

// options are the command's flags.
type options struct {
	records     int
	runs        int
	size        int
	partitions  int
	target      string
	pageCache   bool
	weirAddr    string
	weirPID     int
	compression string
	timeout     time.Duration
	verbose     bool
}

// result is one run's measurements on one target.
type result struct {
	target           string // the set it belongs to: kfake, weir or replicated
	name             string // as reported
	produce, consume time.Duration
	// Produce latency percentiles of the run, from Produce to promise.
	p50, p99 time.Duration
	// CPU time (user+system) the broker processes spent in each phase;
	// zero when not measured (kfake shares this process with the clients).
	produceCPU, consumeCPU time.Duration
	// CPU time this process (the clients, and kfake when it is the target)
	// spent in each phase.
	selfProduceCPU, selfConsumeCPU time.Duration
	// The smallest ISR of the topic's partitions right after producing;
	// 0 when not checked (single-replica targets).
	minISRAfter int
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 1000000, "records to produce and consume per target")
	flag.IntVar(&o.runs, "runs", 3, "runs per target, alternating targets; the report gives the median")
	flag.IntVar(&o.size, "size", 100, "bytes of random value per record (no key)")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of the benchmark topic")
	flag.StringVar(&o.target, "target", "both", "kfake, weir (one broker), replicated (three brokers, replication factor 3, acks=all), a comma-separated list of these, both (kfake,weir) or all (kfake,weir,replicated)")
	flag.BoolVar(&o.pageCache, "page-cache", false, "start Weir (every node) with Kafka's page-cache behaviour (log.flush.interval.messages=9223372036854775807) instead of fsync before acknowledging")
	flag.StringVar(&o.weirAddr, "weir-addr", "", "host:port of an already running Weir to benchmark as the weir target instead of starting one (the replicated target always starts its own cluster)")
	flag.IntVar(&o.weirPID, "weir-pid", 0, "with -weir-addr: the broker's pid, to report its peak memory")
	flag.StringVar(&o.compression, "compression", "default", "producer compression: default (the client's: snappy, else none), none, snappy, lz4, zstd or gzip; the same for every target")
	flag.DurationVar(&o.timeout, "timeout", 20*time.Minute, "give up after this long")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "weir-bench:", err)
		os.Exit(1)
	}
}

// parseTargets turns the -target flag into a set of targets.
func parseTargets(s string) (map[string]bool, error) {
	switch s {
	case "both":
		s = targetKfake + "," + targetWeir
	case "all":
		s = strings.Join(allTargets, ",")
	}
	set := map[string]bool{}
	for _, t := range strings.Split(s, ",") {
		t = strings.TrimSpace(t)
		if !slices.Contains(allTargets, t) {
			return nil, fmt.Errorf("-target: want kfake, weir, replicated, a comma-separated list of them, both or all; got %q", s)
		}
		set[t] = true
	}
	return set, nil
}

func run(o options) error {
	targets, err := parseTargets(o.target)
	if err != nil {
		return err
	}
	if o.records <= 0 || o.size <= 0 || o.partitions <= 0 || o.runs <= 0 {
		return errors.New("-records, -size, -partitions and -runs must be positive")
	}
	codec, err := compressionOpt(o.compression)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	// A batch must hold at least one record; past Kafka's default limit both
	// targets are configured alike to accept such batches.
	batchMax := max(1000012, int32(o.size)+512)
	doKfake, doWeir, doRepl := targets[targetKfake], targets[targetWeir], targets[targetReplicated]

	var extra []string // arguments to every Weir process started
	weirName, replName := "weir", "weir rf3"
	if o.pageCache {
		weirName, replName = "weir (page cache)", "weir rf3 (page cache)"
		extra = append(extra, "--override", "log.flush.interval.messages=9223372036854775807")
	}
	if batchMax > kafkaDefaultMaxMessageBytes {
		extra = append(extra, "--override", "message.max.bytes="+strconv.Itoa(int(batchMax)))
	}
	var bin string
	if (doWeir && o.weirAddr == "") || doRepl {
		var cleanup func()
		if bin, cleanup, err = buildWeir(ctx, o.verbose); err != nil {
			return err
		}
		defer cleanup()
	}

	// One Weir process serves every run, each on a fresh topic; so does
	// one three-node cluster; each kfake run gets a fresh cluster.
	weirAddr, weirPID := o.weirAddr, o.weirPID
	var child *weirProcess
	if doWeir && weirAddr == "" {
		w, err := startWeir(ctx, bin, o.verbose, extra...)
		if err != nil {
			return err
		}
		defer w.close()
		child, weirAddr, weirPID = w, w.addr, w.cmd.Process.Pid
	} else if doWeir && o.pageCache {
		fmt.Fprintln(os.Stderr, "weir-bench: -page-cache has no effect on -weir-addr: start the broker with the override yourself")
	}
	var cl *cluster
	if doRepl {
		if cl, err = startCluster(ctx, bin, replicatedNodes, o.verbose, extra...); err != nil {
			return fmt.Errorf("replicated: %w", err)
		}
		defer cl.close()
	}

	runs := map[string][]result{}
	for i := 0; i < o.runs; i++ {
		if doKfake {
			copts := []kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(int32(o.partitions), "bench")}
			if batchMax > kafkaDefaultMaxMessageBytes {
				copts = append(copts, kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(int(batchMax))}))
			}
			c, err := kfake.NewCluster(copts...)
			if err != nil {
				return fmt.Errorf("kfake: %w", err)
			}
			r, err := bench(ctx, o, benchTarget{target: targetKfake, name: "kfake", seeds: c.ListenAddrs(), topic: "bench"}, batchMax, codec)
			c.Close()
			if err != nil {
				return fmt.Errorf("kfake: %w", err)
			}
			runs[targetKfake] = append(runs[targetKfake], r)
		}
		if doWeir {
			// A fresh name, so that a running broker can be benchmarked
			// repeatedly.
			topic := fmt.Sprintf("bench-%d", time.Now().UnixNano())
			if err := createTopic(ctx, []string{weirAddr}, topic, o.partitions, 1, nil); err != nil {
				return fmt.Errorf("weir: create topic: %w", err)
			}
			var pids []int
			if weirPID > 0 {
				pids = []int{weirPID}
			}
			r, err := bench(ctx, o, benchTarget{target: targetWeir, name: weirName, seeds: []string{weirAddr}, topic: topic, pids: pids}, batchMax, codec)
			if err != nil && child != nil {
				return fmt.Errorf("weir: %w\nthe broker's log ends with:\n%s", err, child.logTail(20))
			} else if err != nil {
				return fmt.Errorf("weir: %w", err)
			}
			runs[targetWeir] = append(runs[targetWeir], r)
		}
		if doRepl {
			r, err := benchReplicated(ctx, o, cl, replName, batchMax, codec)
			if err != nil {
				return fmt.Errorf("replicated: %w\n%s", err, cl.logTails(30))
			}
			runs[targetReplicated] = append(runs[targetReplicated], r)
		}
	}

	// Peak memory, read before the brokers stop.
	peaks := map[string][]int64{}
	if doWeir && weirPID > 0 {
		peak, err := peakRSS(weirPID)
		if err != nil {
			return fmt.Errorf("weir: %w", err)
		}
		peaks[targetWeir] = []int64{peak}
	}
	if doRepl {
		for _, pid := range cl.pids() {
			peak, err := peakRSS(pid)
			if err != nil {
				return fmt.Errorf("replicated: %w", err)
			}
			peaks[targetReplicated] = append(peaks[targetReplicated], peak)
		}
	}
	report(os.Stdout, o, runs, peaks)
	return nil
}

// benchReplicated runs one round on the cluster: a fresh topic of
// replication factor 3, once every partition's ISR holds every replica.
func benchReplicated(ctx context.Context, o options, cl *cluster, name string, batchMax int32, codec kgo.Opt) (result, error) {
	topic := fmt.Sprintf("bench-rf3-%d", time.Now().UnixNano())
	seeds := cl.addrs()
	// Until the cluster has settled, creation may be refused (a controller
	// not elected yet, brokers not all registered): try for a while.
	configs := map[string]*string{"min.insync.replicas": kadm.StringPtr(strconv.Itoa(replicatedMinISR))}
	if err := retry(ctx, 60*time.Second, func() error {
		err := createTopic(ctx, seeds, topic, o.partitions, replicationFactor, configs)
		if errors.Is(err, kerr.TopicAlreadyExists) {
			return nil // an earlier attempt that timed out did create it
		}
		return err
	}); err != nil {
		return result{}, fmt.Errorf("create topic %s: %w", topic, err)
	}
	start := time.Now()
	if err := retry(ctx, 60*time.Second, func() error {
		_, err := cl.minISR(ctx, topic, o.partitions, true)
		return err
	}); err != nil {
		return result{}, fmt.Errorf("topic %s: waiting for full ISRs: %w", topic, err)
	}
	if o.verbose {
		fmt.Fprintf(os.Stderr, "%s: every partition of %s has %d in-sync replicas on every node after %v\n",
			name, topic, replicationFactor, time.Since(start).Round(time.Millisecond))
	}
	// The ISR is complete from the start (a new partition's ISR is all its
	// replicas), so it does not say that the followers fetch yet: a
	// follower whose first fetch fails (as it may while the leader has not
	// yet taken up the new partition) backs off replica.fetch.backoff.ms
	// (1 s). One acks=all record per partition, untimed, waits that out.
	start = time.Now()
	if err := warmUp(ctx, seeds, topic, o.partitions); err != nil {
		return result{}, fmt.Errorf("topic %s: warm-up: %w", topic, err)
	}
	if o.verbose {
		fmt.Fprintf(os.Stderr, "%s: warm-up record acknowledged on every partition after %v\n", name, time.Since(start).Round(time.Millisecond))
	}
	r, err := bench(ctx, o, benchTarget{target: targetReplicated, name: name, seeds: seeds, topic: topic, pids: cl.pids(), warm: 1,
		isr: func() (int, error) { return cl.minISR(ctx, topic, o.partitions, false) }}, batchMax, codec)
	if err != nil {
		return r, err
	}
	// Not timed: the next round's topic replaces this one.
	if err := deleteTopic(ctx, seeds, topic); err != nil {
		fmt.Fprintf(os.Stderr, "weir-bench: replicated: delete topic %s: %v\n", topic, err)
	}
	return r, nil
}

// retry calls f until it succeeds, for up to d; the error is f's last.
func retry(ctx context.Context, d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// compressionOpt turns the -compression flag into a producer option (nil:
// the client's default).
func compressionOpt(name string) (kgo.Opt, error) {
	var c kgo.CompressionCodec
	switch name {
	case "default":
		return nil, nil
	case "none":
		c = kgo.NoCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	case "gzip":
		c = kgo.GzipCompression()
	default:
		return nil, fmt.Errorf("-compression: unknown codec %q", name)
	}
	return kgo.ProducerBatchCompression(c), nil
}
