package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// resumeAtCleanup resumes, when the test ends, any of nodes it left frozen
// (SIGSTOP), before the cluster's own cleanups (registered earlier, so run
// later) kill them.
func resumeAtCleanup(t *testing.T, nodes []*clusterNode) {
	t.Cleanup(func() {
		for _, nd := range nodes {
			if nd.cmd != nil && nd.cmd.Process != nil {
				nd.cmd.Process.Signal(syscall.SIGCONT)
			}
		}
	})
}

// produceAcked hands prod distinct values ("v%08d"), round-robin over
// parts, one every interval (zero: as fast as prod takes them), noting
// each in acks, until the returned stop is called. The records get ctx,
// not a context cancelled to stop: franz-go fails the buffered records of
// a cancelled context, and every record is to be acknowledged or refused
// by a broker. stop
// waits until the loop has handed over its last record, so that every
// record is then acknowledged or failed once prod is flushed.
func produceAcked(ctx context.Context, prod *kgo.Client, acks *ackLog, parts []topicPart, interval time.Duration) (stop func(t *testing.T)) {
	var stopping atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stopping.Load() && ctx.Err() == nil; i++ {
			tp := parts[i%len(parts)]
			v := fmt.Sprintf("v%08d", i)
			acks.mu.Lock()
			acks.sent[v] = tp
			acks.mu.Unlock()
			prod.Produce(ctx, &kgo.Record{Topic: tp.topic, Partition: tp.partition, Value: []byte(v)}, acks.promise)
			time.Sleep(interval)
		}
	}()
	return func(t *testing.T) {
		t.Helper()
		stopping.Store(true)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("the producer is still blocked 60s after it was asked to stop")
		}
	}
}

// sigstop freezes the process (SIGSTOP): it holds its sockets and data but
// answers nothing, like a long GC pause or a VM stall.
func (nd *clusterNode) sigstop() {
	nd.t.Helper()
	if err := nd.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		nd.t.Fatalf("SIGSTOP node %d: %v", nd.id, err)
	}
}

// sigcont resumes a process frozen by sigstop.
func (nd *clusterNode) sigcont() {
	nd.t.Helper()
	if err := nd.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		nd.t.Fatalf("SIGCONT node %d: %v", nd.id, err)
	}
}

// topicPart names one partition.
type topicPart struct {
	topic     string
	partition int32
}

func (tp topicPart) String() string { return fmt.Sprintf("%s/%d", tp.topic, tp.partition) }

// partState is one node's Metadata view of a partition.
type partState struct {
	leader   int32
	epoch    int32
	replicas []int32 // in preference order
	isr      []int32
}

// partitionStates is the node at addr's view of every partition of topics.
func partitionStates(addr string, topics ...string) (map[topicPart]partState, error) {
	m, err := nodeMetadata(addr)
	if err != nil {
		return nil, err
	}
	out := map[topicPart]partState{}
	for _, t := range m.Topics {
		if t.Topic == nil || !slices.Contains(topics, *t.Topic) {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("topic %s: %w", *t.Topic, err)
		}
		for _, p := range t.Partitions {
			isr := slices.Clone(p.ISR)
			slices.Sort(isr)
			out[topicPart{*t.Topic, p.Partition}] = partState{p.Leader, p.LeaderEpoch, p.Replicas, isr}
		}
	}
	return out, nil
}

// agreeOnPartitions checks that every node in live shows the same leader
// (a member of live and of the ISR) and leader epoch for each of the
// partitions, with at least minISR members in each ISR, and returns that
// view.
func agreeOnPartitions(live []*clusterNode, parts []topicPart, minISR int) (map[topicPart]partState, error) {
	var topics []string
	for _, tp := range parts {
		if !slices.Contains(topics, tp.topic) {
			topics = append(topics, tp.topic)
		}
	}
	var ids []int32
	for _, nd := range live {
		ids = append(ids, nd.id)
	}
	var agreed map[topicPart]partState
	for _, nd := range live {
		st, err := partitionStates(nd.addr, topics...)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", nd.id, err)
		}
		for _, tp := range parts {
			s, ok := st[tp]
			switch {
			case !ok:
				return nil, fmt.Errorf("node %d does not show %v", nd.id, tp)
			case !slices.Contains(ids, s.leader) || !slices.Contains(s.isr, s.leader):
				return nil, fmt.Errorf("node %d: %v led by %d, ISR %v, live nodes %v", nd.id, tp, s.leader, s.isr, ids)
			case len(s.isr) < minISR:
				return nil, fmt.Errorf("node %d: %v has ISR %v, want %d members", nd.id, tp, s.isr, minISR)
			case agreed != nil && (agreed[tp].leader != s.leader || agreed[tp].epoch != s.epoch):
				return nil, fmt.Errorf("nodes disagree on %v: leader %d epoch %d, and node %d says leader %d epoch %d",
					tp, agreed[tp].leader, agreed[tp].epoch, nd.id, s.leader, s.epoch)
			}
		}
		if agreed == nil {
			agreed = st
		}
	}
	return agreed, nil
}

// ackLog is what an acks=all producer was told: every acknowledged
// record's partition, offset and value, and every value it tried.
type ackLog struct {
	mu     sync.Mutex
	sent   map[string]topicPart
	acked  map[topicPart]map[int64][]string // values acknowledged at each offset
	count  map[topicPart]int
	noOff  []string       // acknowledged without an offset
	twice  []string       // two values acknowledged at one offset
	failed map[string]int // failed records by error
}

func newAckLog() *ackLog {
	return &ackLog{sent: map[string]topicPart{}, acked: map[topicPart]map[int64][]string{},
		count: map[topicPart]int{}, failed: map[string]int{}}
}

func (l *ackLog) promise(r *kgo.Record, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[err.Error()]++
		return
	}
	tp := topicPart{r.Topic, r.Partition}
	v := string(r.Value)
	l.count[tp]++
	if r.Offset < 0 {
		l.noOff = append(l.noOff, fmt.Sprintf("%q on %v", v, tp))
		return
	}
	if l.acked[tp] == nil {
		l.acked[tp] = map[int64][]string{}
	}
	if prev := l.acked[tp][r.Offset]; len(prev) > 0 {
		l.twice = append(l.twice, fmt.Sprintf("%v@%d: %q, then %q", tp, r.Offset, prev, v))
	}
	l.acked[tp][r.Offset] = append(l.acked[tp][r.Offset], v)
}

// counts is a snapshot of the acknowledgements per partition.
func (l *ackLog) counts() map[topicPart]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := map[topicPart]int{}
	for tp, n := range l.count {
		c[tp] = n
	}
	return c
}

func (l *ackLog) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.count {
		n += c
	}
	return n
}

// waitProgress waits until every partition in parts has had at least n
// more acknowledgements than in since, and returns how long it took.
func waitProgress(t *testing.T, l *ackLog, parts []topicPart, since map[topicPart]int, n int, timeout time.Duration, what string) time.Duration {
	t.Helper()
	return waitFor(t, timeout, what, func() error {
		now := l.counts()
		var behind []string
		for _, tp := range parts {
			if got := now[tp] - since[tp]; got < n {
				behind = append(behind, fmt.Sprintf("%v: %d new acks", tp, got))
			}
		}
		if len(behind) > 0 {
			return fmt.Errorf("want %d new acks per partition; %s", n, strings.Join(behind, ", "))
		}
		return nil
	})
}

// TestClusterAcksAllSurvivesLeaderKill runs three combined
// broker+controller processes with topics of replication factor 3 and
// min.insync.replicas=2, and an acks=all idempotent franz-go producer that
// writes distinct values throughout. Three times, the leader of the
// one-partition topic is SIGKILLed while another broker is SIGSTOPped and
// resumed:
//
//  1. a follower is frozen until the leader shrinks it out of the ISR,
//     the leader is killed while it is frozen, then it is resumed: only
//     the other follower holds what was acknowledged meanwhile;
//  2. a follower is frozen briefly, so that it stays in the ISR (acks=all
//     must then wait for it), the leader is killed while it is frozen,
//     then it is resumed, first in line to be elected;
//  3. the leader is killed, and a survivor (first in line to be elected)
//     is frozen during the failover for longer than a broker session,
//     then resumed.
//
// After each round the producer must make progress again on every
// partition, and the killed node restarts and rejoins every ISR. At the
// end every acknowledged record is read back from the leaders, exactly
// once, at its acknowledged offset; the logs have no gaps, and no value is
// stored twice (idempotence across the failovers).
func TestClusterAcksAllSurvivesLeaderKill(t *testing.T) {
	// Short session and lag timeouts keep failover, fencing and ISR
	// shrinking within a few seconds.
	const lagMs = 2500
	nodes := startClusterWith(t, 3,
		"--override", "broker.session.timeout.ms=3000",
		"--override", "broker.heartbeat.interval.ms=500",
		"--override", fmt.Sprintf("replica.lag.time.max.ms=%d", lagMs))
	resumeAtCleanup(t, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	testStart := time.Now()
	all := []int32{1, 2, 3}
	var seeds []string
	for _, nd := range nodes {
		seeds = append(seeds, nd.addr)
	}
	byID := func(id int32) *clusterNode { return nodes[id-1] }
	except := func(ids ...int32) []*clusterNode {
		var out []*clusterNode
		for _, nd := range nodes {
			if !slices.Contains(ids, nd.id) {
				out = append(out, nd)
			}
		}
		return out
	}

	waitFor(t, 60*time.Second, "three brokers and a controller on every node", func() error {
		_, err := agreeOnCluster(nodes, all)
		return err
	})
	t.Logf("cluster formed after %v", time.Since(testStart).Round(time.Millisecond))

	const one, three = "acks-all-1", "acks-all-3"
	adm := kadm.NewClient(clusterClient(t, seeds))
	minISR := map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}
	for _, tc := range []struct {
		name       string
		partitions int32
	}{{one, 1}, {three, 3}} {
		waitFor(t, 30*time.Second, "create "+tc.name, func() error {
			cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
			defer ccancel()
			r, err := adm.CreateTopic(cctx, tc.partitions, 3, minISR, tc.name)
			if err == nil && r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				err = r.Err
			}
			return err
		})
	}
	parts := []topicPart{{one, 0}, {three, 0}, {three, 1}, {three, 2}}
	fullISR := func(what string) map[topicPart]partState {
		t.Helper()
		var st map[topicPart]partState
		d := waitFor(t, 60*time.Second, what, func() (err error) {
			st, err = agreeOnPartitions(nodes, parts, 3)
			return err
		})
		t.Logf("%s after %v", what, d.Round(time.Millisecond))
		return st
	}
	fullISR("every partition shows an ISR of all three on every node")

	// The producer: acks=all, idempotent (franz-go's default with acks=all),
	// unlimited record retries (the default), round-robin over the four
	// partitions. A bounded buffer makes Produce block while a partition
	// has no leader, rather than queueing without end.
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(5*time.Second),
		kgo.RequestTimeoutOverhead(3*time.Second),
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.MaxBufferedRecords(2000))
	if err != nil {
		t.Fatal(err)
	}
	var closeProd sync.Once
	defer closeProd.Do(prod.Close)
	acks := newAckLog()
	stopProducing := produceAcked(ctx, prod, acks, parts, 0)
	progress := func(since map[topicPart]int, n int, what string) time.Duration {
		t.Helper()
		return waitProgress(t, acks, parts, since, n, 60*time.Second, what)
	}
	progress(map[topicPart]int{}, 300, "acknowledgements before any fault")
	t.Logf("%d records acknowledged before the first fault (%v after the start)", acks.total(),
		time.Since(testStart).Round(time.Millisecond))

	// state waits until every node agrees on every partition with a full
	// ISR and returns acks-all-1's state.
	state := func() partState {
		t.Helper()
		return fullISR("every node shows every partition with a full ISR")[topicPart{one, 0}]
	}
	// byPreference lists p's replicas other than its leader in preference
	// order: the controller elects the first of them in the ISR.
	byPreference := func(p partState) []*clusterNode {
		var out []*clusterNode
		for _, r := range p.replicas {
			if r != p.leader {
				out = append(out, byID(r))
			}
		}
		return out
	}
	// failover waits until the survivors agree on a leader of acks-all-1
	// other than the killed one, and then for the producer to make
	// progress on every partition, logging how long each took; then it
	// restarts the killed node and waits until it is back in every ISR.
	failover := func(round int, killed *clusterNode, killedAt time.Time, before map[topicPart]int) {
		t.Helper()
		var leader, epoch int32
		waitFor(t, 60*time.Second, "a new leader of "+one+" on the survivors", func() error {
			st, err := agreeOnPartitions(except(killed.id), parts[:1], 1)
			if err != nil {
				return err
			}
			leader, epoch = st[parts[0]].leader, st[parts[0]].epoch
			return nil
		})
		elected := time.Since(killedAt)
		progress(before, 100, "acknowledgements on every partition after the failover")
		t.Logf("round %d: node %d leads %s in epoch %d %v after node %d was killed; 100 more acks on every partition %v after the kill",
			round, leader, one, epoch, elected.Round(time.Millisecond), killed.id, time.Since(killedAt).Round(time.Millisecond))
		restartedAt := time.Now()
		killed.restart()
		fullISR(fmt.Sprintf("round %d: node %d back in every ISR after its restart", round, killed.id))
		t.Logf("round %d: node %d rejoined %v after its restart", round, killed.id, time.Since(restartedAt).Round(time.Millisecond))
	}

	// Round 1: freeze a follower until the leader shrinks it out of the
	// ISR, kill the leader while it is frozen, then resume it. Only the
	// other follower holds everything acknowledged meanwhile; with the
	// quorum down to one running voter until the resume, the election
	// happens after it.
	st := state()
	victim := byID(st.leader)
	frozen, other := byPreference(st)[0], byPreference(st)[1]
	t.Logf("round 1: %s led by node %d (epoch %d, replicas %v); freezing node %d", one, st.leader, st.epoch, st.replicas, frozen.id)
	frozenAt := time.Now()
	frozen.sigstop()
	before := acks.counts()
	shrunk := false
	for time.Since(frozenAt) < 10*time.Second {
		ps, err := partitionStates(other.addr, one)
		if err == nil && !slices.Contains(ps[parts[0]].isr, frozen.id) {
			shrunk = true
			t.Logf("round 1: %s ISR %v without the frozen node after %v", one, ps[parts[0]].isr,
				time.Since(frozenAt).Round(time.Millisecond))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !shrunk {
		t.Logf("round 1: the frozen node %d was not shrunk out of the ISR within 10s", frozen.id)
	}
	// A little more producing with the frozen node out of the ISR.
	time.Sleep(time.Second)
	ackedWhileFrozen := acks.total() - sumCounts(before)
	before = acks.counts()
	killedAt := time.Now()
	victim.kill()
	time.Sleep(2 * time.Second)
	frozen.sigcont()
	t.Logf("round 1: %d acks while node %d was frozen; node %d killed, node %d resumed %v after the kill (frozen %v)",
		ackedWhileFrozen, frozen.id, victim.id, frozen.id, time.Since(killedAt).Round(time.Millisecond),
		time.Since(frozenAt).Round(time.Millisecond))
	failover(1, victim, killedAt, before)

	// Round 2: freeze the follower first in line for a short while (well
	// below replica.lag.time.max.ms, so it stays in the ISR and acks=all
	// waits for it), kill the leader while it is frozen, then resume it.
	// It may be elected: it must hold every acknowledged record.
	st = state()
	victim = byID(st.leader)
	frozen = byPreference(st)[0]
	t.Logf("round 2: %s led by node %d (epoch %d, replicas %v); freezing node %d", one, st.leader, st.epoch, st.replicas, frozen.id)
	before = acks.counts()
	frozenAt = time.Now()
	frozen.sigstop()
	time.Sleep(lagMs * time.Millisecond / 3)
	ackedWhileFrozen = acks.total() - sumCounts(before)
	before = acks.counts()
	killedAt = time.Now()
	victim.kill()
	time.Sleep(lagMs * time.Millisecond / 5)
	frozen.sigcont()
	t.Logf("round 2: %d acks while node %d was frozen in the ISR; node %d killed, node %d resumed %v after the kill (frozen %v)",
		ackedWhileFrozen, frozen.id, victim.id, frozen.id, time.Since(killedAt).Round(time.Millisecond),
		time.Since(frozenAt).Round(time.Millisecond))
	failover(2, victim, killedAt, before)

	// Round 3: kill the leader, and freeze the survivor first in line
	// during the failover for longer than a broker session, then resume
	// it.
	st = state()
	victim = byID(st.leader)
	frozen = byPreference(st)[0]
	t.Logf("round 3: %s led by node %d (epoch %d, replicas %v); killing it, then freezing node %d", one, st.leader, st.epoch, st.replicas, frozen.id)
	before = acks.counts()
	killedAt = time.Now()
	victim.kill()
	time.Sleep(500 * time.Millisecond)
	frozen.sigstop()
	time.Sleep(4 * time.Second)
	frozen.sigcont()
	t.Logf("round 3: node %d resumed %v after the kill", frozen.id, time.Since(killedAt).Round(time.Millisecond))
	failover(3, victim, killedAt, before)
	progress(acks.counts(), 100, "acknowledgements with every node back")

	// Stop producing; every record handed to the producer is then
	// acknowledged or failed.
	stopProducing(t)
	fctx, fcancel := context.WithTimeout(ctx, 60*time.Second)
	if err := prod.Flush(fctx); err != nil {
		t.Errorf("flush: %v", err)
	}
	fcancel()
	closeProd.Do(prod.Close)
	final := fullISR("every node shows every partition with a full ISR at the end")

	// Read every partition from its leader, from the start to the end
	// offset (the high watermark) the leader answers, and check every
	// acknowledged record. The producer sends no key; records may fail
	// while leaders are killed.
	verifyAcked(ctx, t, adm, seeds, acks, parts, nil, true)
	if !t.Failed() {
		t.Logf("every one of %d acknowledged records read back once at its offset from the leaders %v, after %v",
			acks.total(), leadersOf(final), time.Since(testStart).Round(time.Millisecond))
	}
}

// verifyAcked reads every partition in parts from offset 0 to the end
// offset (the high watermark) the leaders list and checks that every
// acknowledged record of acks is stored at its acknowledged offset, that
// the offsets have no gap, that each stored value was sent to that
// partition and is stored once, that each record has key, the key every
// record was sent with (nil for none), that no record was acknowledged
// without an offset or at the offset of another, and, unless mayFail
// (faults were injected), that no record failed.
func verifyAcked(ctx context.Context, t *testing.T, adm *kadm.Client, seeds []string, acks *ackLog, parts []topicPart, key []byte, mayFail bool) {
	t.Helper()
	acks.mu.Lock()
	defer acks.mu.Unlock()
	for _, s := range acks.noOff {
		t.Errorf("acknowledged without an offset: %s", s)
	}
	for i, s := range acks.twice {
		if i == 10 {
			t.Errorf("... and %d more offsets acknowledged twice", len(acks.twice)-10)
			break
		}
		t.Errorf("two records acknowledged at one offset: %s", s)
	}
	var failures []string
	for e, n := range acks.failed {
		failures = append(failures, fmt.Sprintf("%d× %s", n, e))
	}
	sort.Strings(failures)
	if len(failures) > 0 && !mayFail {
		t.Errorf("records failed (no fault was injected, so none may fail): %v", failures)
	}
	t.Logf("%d records sent, %d acknowledged, failed: %v", len(acks.sent), sumCounts(acks.count), failures)

	var topics []string
	start := map[string]map[int32]kgo.Offset{}
	for _, tp := range parts {
		if start[tp.topic] == nil {
			topics = append(topics, tp.topic)
			start[tp.topic] = map[int32]kgo.Offset{}
		}
		start[tp.topic][tp.partition] = kgo.NewOffset().At(0)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	end := map[topicPart]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", o.Topic, o.Partition, o.Err)
		}
		end[topicPart{o.Topic, o.Partition}] = o.Offset
	})
	cons := clusterClient(t, seeds, kgo.ConsumePartitions(start), kgo.FetchMaxWait(500*time.Millisecond))
	stored := map[topicPart][]*kgo.Record{}
	cctx, ccancel := context.WithTimeout(ctx, 60*time.Second)
	defer ccancel()
	for {
		done := true
		for _, tp := range parts {
			if n := len(stored[tp]); n == 0 && end[tp] > 0 || n > 0 && stored[tp][n-1].Offset < end[tp]-1 {
				done = false
			}
		}
		if done {
			break
		}
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			var got []string
			for _, tp := range parts {
				got = append(got, fmt.Sprintf("%v: %d records, end %d", tp, len(stored[tp]), end[tp]))
			}
			t.Fatalf("consume: not at the end offsets within 60s: %s", strings.Join(got, "; "))
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			tp := topicPart{r.Topic, r.Partition}
			stored[tp] = append(stored[tp], r)
		})
	}

	seen := map[string]string{}
	var problems []string
	for _, tp := range parts {
		byOffset := map[int64]string{}
		next := int64(0)
		for _, r := range stored[tp] {
			v := string(r.Value)
			where := fmt.Sprintf("%v@%d", tp, r.Offset)
			if r.Offset >= end[tp] {
				continue // past the end listed before the read
			}
			if r.Offset != next {
				problems = append(problems, fmt.Sprintf("%v: offset %d follows %d", tp, r.Offset, next-1))
			}
			next = r.Offset + 1
			if sentTo, ok := acks.sent[v]; !ok || sentTo != tp {
				problems = append(problems, fmt.Sprintf("%s holds %q, never sent there", where, v))
			}
			if !bytes.Equal(r.Key, key) {
				problems = append(problems, fmt.Sprintf("%s: %q has a key of %d bytes, not the %d sent", where, v, len(r.Key), len(key)))
			}
			if prev, dup := seen[v]; dup {
				problems = append(problems, fmt.Sprintf("%q stored twice: at %s and %s", v, prev, where))
			}
			seen[v] = where
			byOffset[r.Offset] = v
		}
		type miss struct {
			off int64
			msg string
		}
		var missing []miss
		for off, vs := range acks.acked[tp] {
			for _, v := range vs {
				if got, ok := byOffset[off]; !ok || got != v {
					where := "nothing"
					if ok {
						where = fmt.Sprintf("%q", got)
					}
					missing = append(missing, miss{off, fmt.Sprintf("%q acknowledged at %v@%d is lost: %s stored there (end offset %d)", v, tp, off, where, end[tp])})
				}
			}
		}
		slices.SortFunc(missing, func(a, b miss) int { return cmp.Compare(a.off, b.off) })
		if len(missing) > 0 {
			t.Errorf("%v: %d acknowledged records lost, at offsets %d to %d",
				tp, len(missing), missing[0].off, missing[len(missing)-1].off)
		}
		for _, m := range missing {
			problems = append(problems, m.msg)
		}
		if int64(len(byOffset)) < int64(acks.count[tp]) {
			problems = append(problems, fmt.Sprintf("%v: %d records stored below the end offset %d, fewer than the %d acknowledged",
				tp, len(byOffset), end[tp], acks.count[tp]))
		}
		t.Logf("%v: %d records stored (end offset %d), %d acknowledged", tp, len(byOffset), end[tp], acks.count[tp])
	}
	for i, p := range problems {
		if i == 50 {
			t.Errorf("... and %d more problems", len(problems)-50)
			break
		}
		t.Error(p)
	}
}

func sumCounts(c map[topicPart]int) int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

func leadersOf(st map[topicPart]partState) string {
	var out []string
	for tp, s := range st {
		out = append(out, fmt.Sprintf("%v:%d", tp, s.leader))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}
