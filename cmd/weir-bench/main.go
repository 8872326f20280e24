// Command weir-bench measures Weir's produce and consume throughput against
// franz-go's in-process fake cluster (kfake) as a baseline, with the same
// franz-go client settings for both.
//
//	go run ./cmd/weir-bench [-records 1000000] [-size 100] [-partitions 8] [-target weir|kfake|both] [-runs 3] [-page-cache]
//
// For each target it produces -records records of -size random bytes with an
// idempotent acks=all kgo producer (client defaults for linger, batching and
// compression; -compression picks a codec for every target alike) and times
// the run from the first Produce to the end of Flush; then a fresh kgo client
// consumes every record from the start, timed from its creation until the
// last record arrives. The consumed records are checked: every offset of
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
// The report is a table of records/s and MB/s (10^6 bytes of record values)
// per target, the Weir/kfake ratios, the CPU time per record of this process
// (the clients, and kfake when it is the target) and of the Weir process,
// and Weir's peak resident memory (VmHWM from /proc/<pid>/status), checked
// against the acceptance bar: produce ≥ 0.7× kfake, consume ≥ 1.0× kfake,
// peak RSS < 500 MiB.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Acceptance bar from the benchmark issue.
const (
	minProduceRatio = 0.7
	minConsumeRatio = 1.0
	maxRSSBytes     = 500 << 20
)

// kafkaDefaultMaxMessageBytes is Apache Kafka's (and Weir's) default
// message.max.bytes; larger batches need the brokers configured for them.
const kafkaDefaultMaxMessageBytes = 1048588

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

// result is one target's measurements.
type result struct {
	target           string
	produce, consume time.Duration
	// CPU time (user+system) the broker process spent in each phase; zero
	// when not measured (kfake shares this process with the clients).
	produceCPU, consumeCPU time.Duration
	// CPU time this process (the clients, and kfake when it is the target)
	// spent in each phase.
	selfProduceCPU, selfConsumeCPU time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 1000000, "records to produce and consume per target")
	flag.IntVar(&o.runs, "runs", 3, "runs per target, alternating targets; the report gives the median")
	flag.IntVar(&o.size, "size", 100, "bytes of random value per record (no key)")
	flag.IntVar(&o.partitions, "partitions", 8, "partitions of the benchmark topic")
	flag.StringVar(&o.target, "target", "both", "weir, kfake or both")
	flag.BoolVar(&o.pageCache, "page-cache", false, "start Weir with Kafka's page-cache behaviour (log.flush.interval.messages=9223372036854775807) instead of fsync before acknowledging")
	flag.StringVar(&o.weirAddr, "weir-addr", "", "host:port of an already running Weir to benchmark instead of starting one")
	flag.IntVar(&o.weirPID, "weir-pid", 0, "with -weir-addr: the broker's pid, to report its peak memory")
	flag.StringVar(&o.compression, "compression", "default", "producer compression: default (the client's: snappy, else none), none, snappy, lz4, zstd or gzip; the same for every target")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	flag.BoolVar(&o.verbose, "v", false, "log progress to stderr")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "weir-bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	switch {
	case o.target != "weir" && o.target != "kfake" && o.target != "both":
		return fmt.Errorf("-target: want weir, kfake or both, got %q", o.target)
	case o.records <= 0 || o.size <= 0 || o.partitions <= 0 || o.runs <= 0:
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
	doKfake := o.target == "kfake" || o.target == "both"
	doWeir := o.target == "weir" || o.target == "both"

	// One Weir process serves every run, each on a fresh topic; each kfake
	// run gets a fresh cluster.
	weirName, weirAddr, weirPID := "weir", o.weirAddr, o.weirPID
	var child *weirProcess
	if o.pageCache {
		weirName = "weir (page cache)"
	}
	if doWeir && weirAddr == "" {
		var extra []string
		if o.pageCache {
			extra = append(extra, "--override", "log.flush.interval.messages=9223372036854775807")
		}
		if batchMax > kafkaDefaultMaxMessageBytes {
			extra = append(extra, "--override", "message.max.bytes="+strconv.Itoa(int(batchMax)))
		}
		w, err := startWeir(ctx, o.verbose, extra...)
		if err != nil {
			return err
		}
		defer w.close()
		child, weirAddr, weirPID = w, w.addr, w.cmd.Process.Pid
	} else if doWeir && o.pageCache {
		fmt.Fprintln(os.Stderr, "weir-bench: -page-cache has no effect with -weir-addr: start the broker with the override yourself")
	}

	var kfakeRuns, weirRuns []result
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
			r, err := bench(ctx, o, "kfake", c.ListenAddrs(), "bench", batchMax, codec, 0)
			c.Close()
			if err != nil {
				return fmt.Errorf("kfake: %w", err)
			}
			kfakeRuns = append(kfakeRuns, r)
		}
		if doWeir {
			// A fresh name, so that a running broker can be benchmarked
			// repeatedly.
			topic := fmt.Sprintf("bench-%d", time.Now().UnixNano())
			if err := createTopic(ctx, weirAddr, topic, o.partitions); err != nil {
				return fmt.Errorf("weir: create topic: %w", err)
			}
			r, err := bench(ctx, o, weirName, []string{weirAddr}, topic, batchMax, codec, weirPID)
			if err != nil && child != nil {
				return fmt.Errorf("weir: %w\nthe broker's log ends with:\n%s", err, child.logTail())
			} else if err != nil {
				return fmt.Errorf("weir: %w", err)
			}
			weirRuns = append(weirRuns, r)
		}
	}

	weirPeak := int64(-1)
	if doWeir && weirPID > 0 {
		var err error
		if weirPeak, err = peakRSS(weirPID); err != nil {
			return fmt.Errorf("weir: %w", err)
		}
	}
	var results [][]result
	for _, runs := range [][]result{kfakeRuns, weirRuns} {
		if len(runs) > 0 {
			results = append(results, runs)
		}
	}
	report(os.Stdout, o, results, weirPeak)
	return nil
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

// createTopic creates topic with the given partitions on the broker at addr.
func createTopic(ctx context.Context, addr, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), 1, nil, topic)
	if err != nil {
		return err
	}
	return resp.Err
}

// bench produces then consumes o.records records on one target; with pid >
// 0 it also measures the CPU time that process spends in each phase.
func bench(ctx context.Context, o options, target string, seeds []string, topic string, batchMax int32, codec kgo.Opt, pid int) (result, error) {
	r := result{target: target}
	logf := func(format string, args ...any) {
		if o.verbose {
			fmt.Fprintf(os.Stderr, "%s: "+format+"\n", append([]any{target}, args...)...)
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
	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
			errOnce.Do(func() { firstErr = err })
		}
	}
	logf("producing %d records of %d bytes", o.records, o.size)
	cpu0, self0 := cpuTime(pid), cpuTime(os.Getpid())
	start := time.Now()
	for i := 0; i < o.records; i++ {
		off := (i * 7919) % (len(pool) - o.size)
		prod.Produce(ctx, &kgo.Record{Value: pool[off : off+o.size : off+o.size]}, promise)
	}
	if err := prod.Flush(ctx); err != nil {
		prod.Close()
		return r, fmt.Errorf("flush: %w", err)
	}
	r.produce = time.Since(start)
	r.produceCPU, r.selfProduceCPU = cpuTime(pid)-cpu0, cpuTime(os.Getpid())-self0
	prod.Close()
	if n := failed.Load(); n > 0 {
		return r, fmt.Errorf("%d records failed to produce, the first with: %w", n, firstErr)
	}
	logf("produced in %v", r.produce)

	// Not timed: the end offsets must add up to exactly what was produced.
	if err := checkEndOffsets(ctx, seeds, topic, int64(o.records)); err != nil {
		return r, err
	}

	logf("consuming")
	cpu0, self0 = cpuTime(pid), cpuTime(os.Getpid())
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
	r.consumeCPU, r.selfConsumeCPU = cpuTime(pid)-cpu0, cpuTime(os.Getpid())-self0
	if bad != nil {
		return r, bad
	}
	if got != o.records {
		return r, fmt.Errorf("consume: %d records, want %d", got, o.records)
	}
	logf("consumed in %v", r.consume)
	return r, nil
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

// weirProcess is a Weir broker started by the benchmark.
type weirProcess struct {
	dir    string // temporary: the binary, its log and its data
	addr   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed once the process has been waited for
}

// startWeir builds ./cmd/weir into a temporary directory and starts it on a
// free loopback port with a temporary log directory, adding extra to its
// arguments.
func startWeir(ctx context.Context, verbose bool, extra ...string) (*weirProcess, error) {
	dir, err := os.MkdirTemp("", "weir-bench")
	if err != nil {
		return nil, err
	}
	w := &weirProcess{dir: dir, exited: make(chan struct{})}
	bin := filepath.Join(dir, "weir")
	if verbose {
		fmt.Fprintln(os.Stderr, "weir: building github.com/weirmq/weir/cmd/weir")
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/weirmq/weir/cmd/weir")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build github.com/weirmq/weir/cmd/weir (run weir-bench inside the module): %v\n%s", err, out)
	}
	if w.addr, err = freeAddr(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if w.log, err = os.Create(filepath.Join(dir, "weir.log")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := append([]string{"--listeners", "PLAINTEXT://" + w.addr, "--log-dirs", filepath.Join(dir, "data")}, extra...)
	w.cmd = exec.Command(bin, args...)
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	if err := w.cmd.Start(); err != nil {
		w.log.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { w.cmd.Wait(); close(w.exited) }()
	for {
		c, err := net.DialTimeout("tcp", w.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-w.exited:
			err := fmt.Errorf("weir exited at startup: %v\n%s", w.cmd.ProcessState, w.logTail())
			w.close()
			return nil, err
		case <-ctx.Done():
			w.close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond): // poll until it listens
		}
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "weir: pid %d, %s\n", w.cmd.Process.Pid, strings.Join(args, " "))
	}
	return w, nil
}

// close stops the broker (SIGTERM, then SIGKILL after 15 s) and removes its
// temporary directory.
func (w *weirProcess) close() {
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(15 * time.Second):
		w.cmd.Process.Kill()
		<-w.exited
	}
	w.log.Close()
	os.RemoveAll(w.dir)
}

// logTail returns the last lines of the broker's log.
func (w *weirProcess) logTail() string {
	f, err := os.Open(w.log.Name())
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if lines = append(lines, sc.Text()); len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// cpuTime returns the user+system CPU time process pid has used so far, from
// /proc/<pid>/stat; zero if pid is 0 or unreadable.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses: utime and
	// stime are fields 14 and 15 of the line, 12 and 13 after ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ, 100 on every Linux architecture Go supports
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// peakRSS reads the peak resident set size (VmHWM) of process pid, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("VmHWM of pid %d: %w", pid, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// report prints the results table (medians over the runs, with the slowest
// and fastest run), the Weir/kfake ratios of the medians, and Weir's peak
// memory (peak < 0: not measured), each against the acceptance bar.
func report(out *os.File, o options, results [][]result, peak int64) {
	fmt.Fprintf(out, "%d records of %d bytes, %d partitions, compression %s, %d run(s) per target (median [min–max]), %d CPUs\n\n",
		o.records, o.size, o.partitions, o.compression, o.runs, runtime.NumCPU())
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tproduce rec/s\tproduce MB/s\tconsume rec/s\tconsume MB/s\tproduce rec/s range\tconsume rec/s range\t")
	type rates struct{ produce, consume float64 }
	var medians []rates
	mb := float64(o.size) / 1e6
	for _, runs := range results {
		p := recordRates(o.records, runs, func(r result) time.Duration { return r.produce })
		c := recordRates(o.records, runs, func(r result) time.Duration { return r.consume })
		m := rates{median(p), median(c)}
		medians = append(medians, m)
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.0f\t%.1f\t%.0f–%.0f\t%.0f–%.0f\t\n", runs[0].target,
			m.produce, m.produce*mb, m.consume, m.consume*mb, p[0], p[len(p)-1], c[0], c[len(c)-1])
	}
	tw.Flush()
	fmt.Fprintln(out)
	if len(results) == 2 {
		k, w, name := medians[0], medians[1], results[1][0].target
		fmt.Fprintf(out, "%s/kfake produce: %.2fx  (bar ≥ %.1fx: %s)\n", name, w.produce/k.produce, minProduceRatio, verdict(w.produce/k.produce >= minProduceRatio))
		fmt.Fprintf(out, "%s/kfake consume: %.2fx  (bar ≥ %.1fx: %s)\n", name, w.consume/k.consume, minConsumeRatio, verdict(w.consume/k.consume >= minConsumeRatio))
	}
	fmt.Fprintln(out, "CPU µs per record (median; /proc, 10 ms resolution):")
	for _, runs := range results {
		self := func(f func(result) time.Duration) float64 { return median(cpuPerRecord(o.records, runs, f)) }
		line := fmt.Sprintf("  %s: this process (clients", runs[0].target)
		if runs[0].target == "kfake" {
			line += " + kfake"
		}
		line += fmt.Sprintf(") produce %.2f, consume %.2f", self(func(r result) time.Duration { return r.selfProduceCPU }),
			self(func(r result) time.Duration { return r.selfConsumeCPU }))
		if runs[0].produceCPU != 0 || runs[0].consumeCPU != 0 {
			line += fmt.Sprintf("; broker process produce %.2f, consume %.2f", self(func(r result) time.Duration { return r.produceCPU }),
				self(func(r result) time.Duration { return r.consumeCPU }))
		}
		fmt.Fprintln(out, line)
	}
	if peak >= 0 {
		fmt.Fprintf(out, "weir peak RSS (VmHWM): %.1f MiB  (bar < %d MiB: %s)\n", float64(peak)/(1<<20), maxRSSBytes>>20, verdict(peak < maxRSSBytes))
	}
}

// recordRates returns the records per second of each run, sorted.
func recordRates(records int, runs []result, d func(result) time.Duration) []float64 {
	var out []float64
	for _, r := range runs {
		out = append(out, float64(records)/d(r).Seconds())
	}
	slices.Sort(out)
	return out
}

// cpuPerRecord returns the CPU microseconds per record of each run, sorted.
func cpuPerRecord(records int, runs []result, d func(result) time.Duration) []float64 {
	var out []float64
	for _, r := range runs {
		out = append(out, float64(d(r).Microseconds())/float64(records))
	}
	slices.Sort(out)
	return out
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func verdict(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}
