package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// cpuTime returns the user+system CPU time processes pids have used so far,
// added up, from /proc/<pid>/stat; a process that is unreadable counts zero.
func cpuTime(pids ...int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		total += cpuTimeOf(pid)
	}
	return total
}

// cpuTimeOf returns the user+system CPU time process pid has used so far,
// from /proc/<pid>/stat; zero if pid is 0 or unreadable.
func cpuTimeOf(pid int) time.Duration {
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
// and fastest run's rates), the Weir/kfake and replicated/Weir ratios of the
// medians, the CPU time per record, and the Weir processes' peak memory
// (peaks: by target, one per process), each against its acceptance bar.
func report(out *os.File, o options, runs map[string][]result, peaks map[string][]int64) {
	fmt.Fprintf(out, "%d records of %d bytes, %d partitions, compression %s, %d run(s) per target (median [min–max]), %d CPUs\n",
		o.records, o.size, o.partitions, o.compression, o.runs, runtime.NumCPU())
	if len(runs[targetReplicated]) > 0 {
		fmt.Fprintf(out, "%s: %d brokers on loopback (each also a metadata quorum voter), replication factor %d, min.insync.replicas=%d, acks=all;\n"+
			"  timed once every ISR is full and an untimed acks=all warm-up record per partition is acknowledged\n",
			runs[targetReplicated][0].name, replicatedNodes, replicationFactor, replicatedMinISR)
	}
	fmt.Fprintf(out, "produce latency: from a record's Produce call to its promise, every %dth record; p50/p99 of each run, median over the runs\n", latencyEvery)
	fmt.Fprintln(out)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tproduce rec/s\tproduce MB/s\tp50 ms\tp99 ms\tconsume rec/s\tconsume MB/s\tproduce rec/s range\tconsume rec/s range\t")
	type rates struct{ produce, consume float64 }
	medians := map[string]rates{}
	names := map[string]string{}
	mb := float64(o.size) / 1e6
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, target := range allTargets {
		rs := runs[target]
		if len(rs) == 0 {
			continue
		}
		names[target] = rs[0].name
		p := recordRates(o.records, rs, func(r result) time.Duration { return r.produce })
		c := recordRates(o.records, rs, func(r result) time.Duration { return r.consume })
		m := rates{median(p), median(c)}
		medians[target] = m
		p50 := median(sortedOf(rs, func(r result) float64 { return ms(r.p50) }))
		p99 := median(sortedOf(rs, func(r result) float64 { return ms(r.p99) }))
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.2f\t%.2f\t%.0f\t%.1f\t%.0f–%.0f\t%.0f–%.0f\t\n", rs[0].name,
			m.produce, m.produce*mb, p50, p99, m.consume, m.consume*mb, p[0], p[len(p)-1], c[0], c[len(c)-1])
	}
	tw.Flush()
	fmt.Fprintln(out)

	if k, ok := medians[targetKfake]; ok {
		if w, ok := medians[targetWeir]; ok {
			name := names[targetWeir]
			fmt.Fprintf(out, "%s/kfake produce: %.2fx  (bar ≥ %.1fx: %s)\n", name, w.produce/k.produce, minProduceRatio, verdict(w.produce/k.produce >= minProduceRatio))
			fmt.Fprintf(out, "%s/kfake consume: %.2fx  (bar ≥ %.1fx: %s)\n", name, w.consume/k.consume, minConsumeRatio, verdict(w.consume/k.consume >= minConsumeRatio))
		}
	}
	if rp, ok := medians[targetReplicated]; ok {
		if w, ok := medians[targetWeir]; ok {
			name := names[targetReplicated] + "/" + names[targetWeir]
			fmt.Fprintf(out, "%s produce: %.2fx  (bar ≥ %.1fx: %s)\n", name, rp.produce/w.produce, minReplicatedProduceRatio, verdict(rp.produce/w.produce >= minReplicatedProduceRatio))
			fmt.Fprintf(out, "%s consume: %.2fx  (no bar)\n", name, rp.consume/w.consume)
		} else {
			fmt.Fprintln(out, "no replicated/single-node ratio: the weir target did not run (-target all, or weir,replicated)")
		}
	}

	fmt.Fprintln(out, "CPU µs per record (median; /proc, 10 ms resolution):")
	for _, target := range allTargets {
		rs := runs[target]
		if len(rs) == 0 {
			continue
		}
		perRecord := func(f func(result) time.Duration) float64 { return median(cpuPerRecord(o.records, rs, f)) }
		line := fmt.Sprintf("  %s: this process (clients", rs[0].name)
		if target == targetKfake {
			line += " + kfake"
		}
		line += fmt.Sprintf(") produce %.2f, consume %.2f", perRecord(func(r result) time.Duration { return r.selfProduceCPU }),
			perRecord(func(r result) time.Duration { return r.selfConsumeCPU }))
		if rs[0].produceCPU != 0 || rs[0].consumeCPU != 0 {
			which := "broker process"
			if target == targetReplicated {
				which = fmt.Sprintf("broker processes (sum of %d)", replicatedNodes)
			}
			line += fmt.Sprintf("; %s produce %.2f, consume %.2f", which, perRecord(func(r result) time.Duration { return r.produceCPU }),
				perRecord(func(r result) time.Duration { return r.consumeCPU }))
		}
		fmt.Fprintln(out, line)
	}

	mib := func(b int64) float64 { return float64(b) / (1 << 20) }
	if p := peaks[targetWeir]; len(p) == 1 {
		fmt.Fprintf(out, "%s peak RSS (VmHWM): %.1f MiB  (bar < %d MiB: %s)\n", names[targetWeir], mib(p[0]), maxRSSBytes>>20, verdict(p[0] < maxRSSBytes))
	}
	if p := peaks[targetReplicated]; len(p) > 0 {
		var sum int64
		var each []string
		for i, b := range p {
			sum += b
			each = append(each, fmt.Sprintf("node %d %.1f", i+1, mib(b)))
		}
		fmt.Fprintf(out, "%s peak RSS (VmHWM), sum over its %d processes: %.1f MiB  (%s MiB; bar < %d MiB for each: %s)\n",
			names[targetReplicated], len(p), mib(sum), strings.Join(each, ", "), maxRSSBytes>>20, verdict(slices.Max(p) < maxRSSBytes))
	}
	if rs := runs[targetReplicated]; len(rs) > 0 {
		var isrs []string
		full := true
		for _, r := range rs {
			isrs = append(isrs, strconv.Itoa(r.minISRAfter))
			full = full && r.minISRAfter == replicationFactor
		}
		note := "every ISR still full"
		if !full {
			note = "an ISR SHRANK: acks=all then waits for fewer replicas"
		}
		fmt.Fprintf(out, "%s smallest ISR right after producing, per run: %s of %d  (%s)\n", names[targetReplicated], strings.Join(isrs, ", "), replicationFactor, note)
	}
}

// recordRates returns the records per second of each run, sorted.
func recordRates(records int, runs []result, d func(result) time.Duration) []float64 {
	return sortedOf(runs, func(r result) float64 { return float64(records) / d(r).Seconds() })
}

// cpuPerRecord returns the CPU microseconds per record of each run, sorted.
func cpuPerRecord(records int, runs []result, d func(result) time.Duration) []float64 {
	return sortedOf(runs, func(r result) float64 { return float64(d(r).Microseconds()) / float64(records) })
}

// sortedOf returns f of each run, sorted.
func sortedOf(runs []result, f func(result) float64) []float64 {
	var out []float64
	for _, r := range runs {
		out = append(out, f(r))
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
