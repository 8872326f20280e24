package main

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/IBM/sarama"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Consumer groups on a three-node cluster, where a group's coordinator is
// one broker (the leader of the group's partition of __consumer_offsets)
// whichever broker its members reach the cluster through, and survives
// that broker's death.

// clusterGroupFlags are the nodes' arguments: groups form at once and
// KIP-848 members heartbeat often (see group848Flags), __consumer_offsets
// has few partitions so that it is
// created and failed over quickly, and a dead broker is fenced after 3 s
// (as in the replication tests) so that its partitions, the coordinator's
// among them, move within the test's time.
var clusterGroupFlags = append(slices.Clone(group848Flags),
	"--override", "offsets.topic.num.partitions="+strconv.Itoa(clusterOffsetsPartitions),
	"--override", "broker.session.timeout.ms=3000",
	"--override", "broker.heartbeat.interval.ms=500")

const clusterOffsetsPartitions = 3

// offsetsPartition is the partition of __consumer_offsets that holds group,
// by Kafka's rule: Utils.abs(group.hashCode()) % partitions, with Java's
// String.hashCode (over UTF-16 code units, wrapping at 32 bits) and Kafka's
// Utils.abs (0 for Integer.MIN_VALUE).
func offsetsPartition(group string, partitions int32) int32 {
	var h int32
	for _, c := range utf16.Encode([]rune(group)) {
		h = 31*h + int32(c)
	}
	switch {
	case h == math.MinInt32:
		h = 0
	case h < 0:
		h = -h
	}
	return h % partitions
}

// ownership follows which member of one group holds which partitions, as
// the members' clients report it (rebalance callbacks, or what stands for
// them), and keeps every assignment of a partition that another member
// still held. Clients report a release before they (re)join, and an
// assignment after the group's sync, so under a correct coordinator an
// assignment never finds another holder — except one the coordinator had
// evicted that has not noticed yet: such an overlap is excused once the
// holder reports the partition lost, or reports holding partitions under a
// new member id (memberID: the coordinator forgot the old one, which
// franz-go learns from a JoinGroup's UNKNOWN_MEMBER_ID without calling
// its lost callback).
type ownership struct {
	group string
	start time.Time // of the test, for relative times

	mu       sync.Mutex
	held     map[string]map[int32]bool // member → partitions it holds
	started  map[string]time.Time      // member → when it was started
	joined   map[string]bool           // members that had partitions once
	joins    []string                  // how long each member took to get partitions
	overlaps []*overlap
	events   []string          // every report, for a failure's explanation
	ids      map[string]string // member → the member id it holds its partitions under
}

// overlap is an assignment of partition to taker while holder still held
// it.
type overlap struct {
	partition     int32
	holder, taker string
	at            time.Duration
	excused       bool // the holder later reported the partition lost
}

func newOwnership(group string, start time.Time) *ownership {
	return &ownership{group: group, start: start, held: map[string]map[int32]bool{},
		started: map[string]time.Time{}, joined: map[string]bool{}, ids: map[string]string{}}
}

// starting notes when member starts, to time its join.
func (o *ownership) starting(member string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started[member] = time.Now()
}

// assigned records that member now also holds parts.
func (o *ownership) assigned(member string, parts []int32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	at := time.Since(o.start)
	o.events = append(o.events, fmt.Sprintf("%v %s +%v", at.Round(time.Millisecond), member, parts))
	for _, p := range parts {
		for other, ps := range o.held {
			if other != member && ps[p] {
				o.overlaps = append(o.overlaps, &overlap{partition: p, holder: other, taker: member, at: at})
			}
		}
		if o.held[member] == nil {
			o.held[member] = map[int32]bool{}
		}
		o.held[member][p] = true
	}
	if len(parts) > 0 && !o.joined[member] {
		o.joined[member] = true
		o.joins = append(o.joins, fmt.Sprintf("%s: first partitions %v %v after it started (at %v)",
			member, parts, time.Since(o.started[member]).Round(time.Millisecond), at.Round(time.Millisecond)))
	}
}

// released records that member no longer holds parts; lost says its
// client learnt it had been evicted. (franz-go reports a cooperative
// session's end as a revocation of nothing.)
func (o *ownership) released(member string, parts []int32, lost bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.release(member, parts, lost)
}

// memberID records the member id under which member now reports its
// partitions. A new id means the coordinator evicted the old member: what
// it held under the old id was lost then.
func (o *ownership) memberID(member, id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	old, ok := o.ids[member]
	o.ids[member] = id
	if !ok || old == id {
		return
	}
	var parts []int32
	for p := range o.held[member] {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	o.events = append(o.events, fmt.Sprintf("%v %s is now member %s", time.Since(o.start).Round(time.Millisecond), member, id))
	o.release(member, parts, true)
}

// releasedAll records that member no longer holds any partition.
func (o *ownership) releasedAll(member string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []int32
	for p := range o.held[member] {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	o.release(member, parts, false)
}

// release is released with o.mu held.
func (o *ownership) release(member string, parts []int32, lost bool) {
	how := ""
	if lost {
		how = " lost"
	}
	o.events = append(o.events, fmt.Sprintf("%v %s -%v%s", time.Since(o.start).Round(time.Millisecond), member, parts, how))
	for _, p := range parts {
		if !o.held[member][p] {
			continue
		}
		delete(o.held[member], p)
		if !lost {
			continue
		}
		for _, ov := range o.overlaps {
			if ov.holder == member && ov.partition == p {
				ov.excused = true
			}
		}
	}
}

// holdings describes who holds what now.
func (o *ownership) holdings() map[string][]int32 {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string][]int32{}
	for m, ps := range o.held {
		for p := range ps {
			out[m] = append(out[m], p)
		}
		slices.Sort(out[m])
	}
	return out
}

// complete says whether every one of members holds some partitions and
// every partition below n is held by exactly one member.
func (o *ownership) complete(members []string, n int32) error {
	h := o.holdings()
	count := map[int32]int{}
	for _, m := range members {
		if len(h[m]) == 0 {
			return fmt.Errorf("%s holds no partition; holdings %v; %s", m, h, o.overlapSummary())
		}
		for _, p := range h[m] {
			count[p]++
		}
	}
	for p := range n {
		if count[p] != 1 {
			return fmt.Errorf("partition %d held by %d members; holdings %v; %s", p, count[p], h, o.overlapSummary())
		}
	}
	return nil
}

// history is every assignment (+) and release (-) reported, in order.
func (o *ownership) history() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.events, "; ")
}

func (o *ownership) overlapSummary() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprintf("%d assignments of a partition another member held", len(o.overlaps))
}

// check fails the test for every overlap not excused, and logs the
// excused ones and the join times.
func (o *ownership) check(t *testing.T) {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, j := range o.joins {
		t.Logf("group %s: %s", o.group, j)
	}
	bad := 0
	for _, ov := range o.overlaps {
		msg := fmt.Sprintf("group %s: at %v partition %d assigned to %s while %s still held it",
			o.group, ov.at.Round(time.Millisecond), ov.partition, ov.taker, ov.holder)
		switch {
		case ov.excused:
			t.Logf("%s (excused: %s reported it lost, it had been evicted)", msg, ov.holder)
		case bad < 20:
			t.Error(msg)
			fallthrough
		default:
			bad++
		}
	}
	if bad > 20 {
		t.Errorf("group %s: ... %d partitions assigned while held, in all", o.group, bad)
	}
	if bad > 0 {
		t.Logf("group %s: the members reported: %s", o.group, strings.Join(o.events, "; "))
	}
}

// clusterGroup is one consumer group of these tests: what its members
// consumed and which partitions they held.
type clusterGroup struct {
	name   string
	topic  string
	seen   *groupSeen
	owners *ownership
}

func newClusterGroup(name, topic string, start time.Time) *clusterGroup {
	return &clusterGroup{name: name, topic: topic, seen: newGroupSeen(), owners: newOwnership(name, start)}
}

// groupMembers runs the group members of a test, each in goroutines of its
// own until it is stopped. Stopping is asynchronous (a member may take a
// while to leave when its coordinator is down); the test's cleanup stops
// the members left and waits for them, so that none outlives the test.
type groupMembers struct {
	t     *testing.T
	wg    sync.WaitGroup
	mu    sync.Mutex
	stops map[string]context.CancelFunc
}

func newGroupMembers(t *testing.T) *groupMembers {
	ms := &groupMembers{t: t, stops: map[string]context.CancelFunc{}}
	t.Cleanup(func() { ms.stopAll(60 * time.Second) })
	return ms
}

// add registers member name and returns the context it runs under.
func (ms *groupMembers) add(name string) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.stops[name] = cancel
	return ctx
}

// stop asks the named members to commit and leave their groups.
func (ms *groupMembers) stop(names ...string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, n := range names {
		ms.stops[n]()
	}
}

// stopAll stops every member and waits until all have left.
func (ms *groupMembers) stopAll(timeout time.Duration) {
	ms.mu.Lock()
	for _, stop := range ms.stops {
		stop()
	}
	ms.mu.Unlock()
	done := make(chan struct{})
	go func() {
		ms.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		ms.t.Errorf("group members still running %v after they were stopped", timeout)
	}
}

// franz runs a franz-go member of g, seeded with seeds (the broker it is
// to reach the cluster through first), assigning with assign (a classic
// balancer, or KIP-848's server-side assignment). It commits
// automatically and, since a revocation callback replaces franz-go's
// default one, on revocation too; its assigned, revoked and lost callbacks
// tell g.owners.
func (ms *groupMembers) franz(g *clusterGroup, name string, seeds []string, assign kgo.GroupOpt) {
	ms.t.Helper()
	ctx := ms.add(name)
	g.owners.starting(name)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ClientID(name),
		kgo.ConsumerGroup(g.name), kgo.ConsumeTopics(g.topic), assign,
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.RebalanceTimeout(8*time.Second), kgo.AutoCommitInterval(200*time.Millisecond),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMinAge(250*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, m map[string][]int32) {
			id, _ := cl.GroupMetadata()
			g.owners.memberID(name, id)
			g.owners.assigned(name, m[g.topic])
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
			id, _ := cl.GroupMetadata()
			g.owners.memberID(name, id)
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			cl.CommitUncommittedOffsets(cctx) // a failure means records are read again: allowed
			g.owners.released(name, m[g.topic], false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			g.owners.released(name, m[g.topic], true)
		}))
	if err != nil {
		ms.t.Fatal(err)
	}
	ms.wg.Add(1)
	go func() {
		defer ms.wg.Done()
		defer cl.Close() // revokes (commits) and leaves
		for ctx.Err() == nil {
			// Fetch errors (leaders moving, the group session lost) are
			// the client's to recover from; only records matter here.
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { g.seen.add(name, string(r.Value)) })
		}
	}()
}

// sarama runs a sarama member of g (range strategy), which reports the
// claims of each session as it starts and ends.
func (ms *groupMembers) sarama(g *clusterGroup, name string, seeds []string) {
	ms.t.Helper()
	ctx := ms.add(name)
	g.owners.starting(name)
	cfg := saramaGroupConfig(sarama.DefaultVersion)
	cfg.ClientID = name
	h := saramaGroupHandler{who: name, seen: g.seen,
		onSetup:   func(s sarama.ConsumerGroupSession) { g.owners.assigned(name, s.Claims()[g.topic]) },
		onCleanup: func(s sarama.ConsumerGroupSession) { g.owners.released(name, s.Claims()[g.topic], false) },
	}
	runSaramaMember(ctx, ms.t, &ms.wg, seeds, g.name, g.topic, cfg, h, true)
}

// kafkaGoSubscribed finds the partitions in the log line of a kafka-go
// Reader taking up a generation's assignment ("subscribed to topics and
// partitions: map[{topic:t partition:3}:-2 ...]").
var kafkaGoSubscribed = regexp.MustCompile(`partition:(\d+)\}`)

// kafkaGo runs a segmentio/kafka-go Reader in g. The Reader has no
// rebalance callbacks; its log lines stand for them (kafka-go v0.4.51,
// reader.go): "subscribed to topics and partitions" when it takes up a
// generation's assignment, and "stopped commit for group" when the
// generation's commit loop ends, which is before the Reader joins again
// (the consumer group waits for every goroutine of a generation).
func (ms *groupMembers) kafkaGo(g *clusterGroup, name string, seeds []string) {
	ms.t.Helper()
	ctx := ms.add(name)
	g.owners.starting(name)
	logger := kafka.LoggerFunc(func(msg string, args ...any) {
		switch {
		case strings.HasPrefix(msg, "subscribed to topics and partitions"):
			var parts []int32
			for _, m := range kafkaGoSubscribed.FindAllStringSubmatch(fmt.Sprintf(msg, args...), -1) {
				p, _ := strconv.Atoi(m[1])
				parts = append(parts, int32(p))
			}
			g.owners.assigned(name, parts)
		case strings.HasPrefix(msg, "stopped commit for group"):
			g.owners.releasedAll(name)
		}
	})
	r := newGroupReader(seeds, g.name, g.topic, logger)
	var reading sync.WaitGroup
	readGroup(ctx, ms.t, &reading, r, name, g.seen, true)
	ms.wg.Add(1)
	go func() {
		defer ms.wg.Done()
		<-ctx.Done()
		reading.Wait()
		r.Close() // commits what was read, leaves
	}()
}

// committedWatch samples groups' committed offsets and keeps every
// partition's highest, and each time one was seen lower than before: a
// committed offset, once acknowledged, must never go back, through a
// coordinator's death and restart included.
type committedWatch struct {
	start time.Time
	mu    sync.Mutex
	high  map[string]map[int32]committedSample // group → partition → highest
	drops []string
	ok    map[string]int // group → successful samples
	after map[string]int // of them, since markRestart
	// restarted: the killed coordinator was restarted.
	restarted bool
}

// committedSample is a committed offset and when the test saw it.
type committedSample struct {
	offset int64
	seenAt time.Duration
}

// sample fetches each group's committed offsets once, through a new client
// seeded with seeds: it finds the coordinator afresh, through a broker of
// its choosing, as a consumer starting then would. A failed fetch (no
// coordinator for a moment) is no sample; a partition missing from a
// successful one counts as offset -1.
func (w *committedWatch) sample(ctx context.Context, seeds []string, groups []string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for _, g := range groups {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		offs, err := adm.FetchOffsets(cctx, g)
		cancel()
		if err != nil {
			continue
		}
		got := map[int32]int64{}
		failed := false
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Err != nil {
				failed = true
			}
			got[o.Partition] = o.At
		})
		if failed {
			continue
		}
		w.record(g, got)
	}
}

// highest is the highest committed offset seen of each of group's
// partitions.
func (w *committedWatch) highest(group string) map[int32]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[int32]int64{}
	for p, s := range w.high[group] {
		out[p] = s.offset
	}
	return out
}

// markRestart starts counting the samples taken after the restart.
func (w *committedWatch) markRestart() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.restarted = true
}

func (w *committedWatch) record(group string, got map[int32]int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Since(w.start)
	w.ok[group]++
	if w.restarted {
		w.after[group]++
	}
	if w.high[group] == nil {
		w.high[group] = map[int32]committedSample{}
	}
	for p, prev := range w.high[group] {
		offset, ok := got[p]
		if !ok {
			offset = -1
		}
		if offset < prev.offset {
			w.drops = append(w.drops, fmt.Sprintf("group %s: partition %d committed offset %d at %v, after %d at %v",
				group, p, offset, now.Round(time.Millisecond), prev.offset, prev.seenAt.Round(time.Millisecond)))
		}
	}
	for p, offset := range got {
		if prev, ok := w.high[group][p]; !ok || offset > prev.offset {
			w.high[group][p] = committedSample{offset, now}
		}
	}
}

// watchCommitted samples groups' committed offsets every 200 ms until ctx
// ends, each time through a new client seeded with the next node first;
// the returned function waits for the sampler to stop.
func watchCommitted(ctx context.Context, nodes []*clusterNode, start time.Time, groups ...string) (*committedWatch, func()) {
	w := &committedWatch{start: start, high: map[string]map[int32]committedSample{}, ok: map[string]int{}, after: map[string]int{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			w.sample(ctx, seedsFrom(nodes, nodes[i%len(nodes)]), groups)
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return w, func() { <-done }
}

// produceNumbered writes numbered records round-robin over parts, one every
// interval, with an acks=all idempotent producer, until the returned stop is
// called; stop waits until every record handed to the producer is
// acknowledged or failed. A bounded buffer makes the producer wait while a
// partition has no leader.
func produceNumbered(ctx context.Context, t *testing.T, seeds []string, parts []topicPart, interval time.Duration) (*ackLog, func()) {
	t.Helper()
	prod := clusterClient(t, seeds, kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(5*time.Second), kgo.MetadataMinAge(250*time.Millisecond),
		kgo.MaxBufferedRecords(1000))
	acks := newAckLog()
	stop := produceAcked(ctx, prod, acks, parts, interval)
	return acks, func() {
		t.Helper()
		stop(t)
		fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := prod.Flush(fctx); err != nil {
			t.Errorf("flush: %v", err)
		}
	}
}

// acknowledged lists the values of every acknowledged record.
func (l *ackLog) acknowledged() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, byOffset := range l.acked {
		for _, vs := range byOffset {
			out = append(out, vs...)
		}
	}
	sort.Strings(out)
	return out
}

// missing lists the values of want not consumed yet.
func (s *groupSeen) missing(want []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, v := range want {
		if s.vals[v] == 0 {
			out = append(out, v)
		}
	}
	return out
}

// coordinatorOf asks every node in live which broker coordinates group,
// and requires them all to name the same one, live, and, where a node
// lists __consumer_offsets, the leader of the group's partition of it in
// that node's view (Kafka's rule).
func coordinatorOf(live []*clusterNode, group string) (int32, error) {
	coordinator := int32(-1)
	var views []string
	agree := true
	for _, nd := range live {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version = 3
		req.CoordinatorKey = group
		resp, err := nodeRequest(nd.addr, req)
		if err != nil {
			return -1, fmt.Errorf("node %d: %w", nd.id, err)
		}
		fc := resp.(*kmsg.FindCoordinatorResponse)
		if err := kerr.ErrorForCode(fc.ErrorCode); err != nil {
			return -1, fmt.Errorf("node %d: FindCoordinator(%s): %w", nd.id, group, err)
		}
		if !slices.ContainsFunc(live, func(l *clusterNode) bool { return l.id == fc.NodeID }) {
			return -1, fmt.Errorf("node %d names node %d, which is not live, as %s's coordinator", nd.id, fc.NodeID, group)
		}
		view := fmt.Sprintf("node %d says %d", nd.id, fc.NodeID)
		p := offsetsPartition(group, clusterOffsetsPartitions)
		if st, err := partitionStates(nd.addr, "__consumer_offsets"); err == nil {
			if ps, ok := st[topicPart{"__consumer_offsets", p}]; ok {
				view += fmt.Sprintf(" (and __consumer_offsets/%d is led by %d)", p, ps.leader)
				if ps.leader != fc.NodeID {
					agree = false
				}
			}
		}
		views = append(views, view)
		if coordinator != -1 && fc.NodeID != coordinator {
			agree = false
		}
		if coordinator == -1 {
			coordinator = fc.NodeID
		}
	}
	if !agree {
		return coordinator, fmt.Errorf("the nodes disagree on %s's coordinator: %s", group, strings.Join(views, "; "))
	}
	return coordinator, nil
}

// waitCoordinator polls coordinatorOf until the nodes agree or timeout
// passes; it returns the last answer, how long it took, and the last
// disagreement if they never agreed.
func waitCoordinator(live []*clusterNode, group string, timeout time.Duration) (int32, time.Duration, error) {
	start := time.Now()
	for {
		id, err := coordinatorOf(live, group)
		if err == nil || time.Since(start) > timeout {
			return id, time.Since(start), err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// seedsFrom is every node's address, first's first: a client seeded so
// reaches the cluster through first (while it lives).
func seedsFrom(nodes []*clusterNode, first *clusterNode) []string {
	seeds := []string{first.addr}
	for _, nd := range nodes {
		if nd != first {
			seeds = append(seeds, nd.addr)
		}
	}
	return seeds
}

// startGroupCluster starts three nodes with clusterGroupFlags, waits for
// them to agree on the cluster, and creates topic with partitions
// partitions of three replicas, all in sync on every node.
func startGroupCluster(ctx context.Context, t *testing.T, topic string, partitions int32) ([]*clusterNode, *kadm.Client) {
	t.Helper()
	start := time.Now()
	nodes := startClusterWith(t, 3, clusterGroupFlags...)
	waitFor(t, 60*time.Second, "three brokers and a controller on every node", func() error {
		_, err := agreeOnCluster(nodes, []int32{1, 2, 3})
		return err
	})
	adm := kadm.NewClient(clusterClient(t, seedsFrom(nodes, nodes[0])))
	createTopics(ctx, t, adm, 30*time.Second, partitions, 3, topic)
	waitFor(t, 30*time.Second, "every node shows "+topic+" with a full ISR", func() error {
		_, err := agreeOnPartitions(nodes, topicParts(topic, partitions), 3)
		return err
	})
	t.Logf("cluster formed and %s created in %v", topic, time.Since(start).Round(time.Millisecond))
	return nodes, adm
}

func topicParts(topic string, partitions int32) []topicPart {
	var out []topicPart
	for p := range partitions {
		out = append(out, topicPart{topic, p})
	}
	return out
}

// TestClusterGroups runs three consumer groups on a three-node cluster
// while an acks=all idempotent producer writes numbered records to a
// 6-partition topic of three replicas: franz-go members with the (eager)
// range balancer, franz-go members with the cooperative-sticky one, and
// sarama members with kafka-go Readers together. Members come and go, each
// reaching the cluster through a different broker first. Midway the
// groups' coordinator (one node: the three group names share a partition
// of __consumer_offsets) is SIGKILLed, and restarted a few seconds later.
//
// It requires that every node names the same coordinator; that every
// acknowledged record is consumed by each group; that no partition is
// assigned to a member of a group while another member of that group
// still holds it (from the clients' rebalance callbacks); and that no
// group's committed offset of a partition is ever seen lower than before.
func TestClusterGroups(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	const topic = "group-events"
	nodes, adm := startGroupCluster(ctx, t, topic, groupPartitions)
	start := time.Now()
	at := func() time.Duration { return time.Since(start).Round(time.Millisecond) }
	pause := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d):
		}
	}

	rangeG := newClusterGroup("range-group", topic, start)
	coopG := newClusterGroup("cooperative-group", topic, start)
	mixedG := newClusterGroup("mixed-group", topic, start)
	nextG := newClusterGroup("consumer-group", topic, start) // KIP-848
	groups := []*clusterGroup{rangeG, coopG, mixedG, nextG}
	serverSide := kgo.ServerSideBalancer()
	var names []string
	for _, g := range groups {
		names = append(names, g.name)
	}
	// One coordinator for the three groups, so that killing it tests all.
	p := offsetsPartition(rangeG.name, clusterOffsetsPartitions)
	for _, g := range groups {
		if q := offsetsPartition(g.name, clusterOffsetsPartitions); q != p {
			t.Fatalf("group %s is in __consumer_offsets/%d, %s in %d: choose names sharing a partition", g.name, q, rangeG.name, p)
		}
	}

	acks, stopProducing := produceNumbered(ctx, t, seedsFrom(nodes, nodes[0]), topicParts(topic, groupPartitions), 2*time.Millisecond)
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	watch, watchDone := watchCommitted(watchCtx, nodes, start, names...)
	ms := newGroupMembers(t)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	step := func(what string) { t.Logf("%v: %s (%d records acknowledged)", at(), what, acks.total()) }

	step("first members: range-0 via node 1, coop-0 via node 2, sarama-0 via node 3, next-0 (KIP-848) via node 1")
	ms.franz(rangeG, "range-0", seedsFrom(nodes, n1), kgo.Balancers(kgo.RangeBalancer()))
	ms.franz(coopG, "coop-0", seedsFrom(nodes, n2), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	ms.sarama(mixedG, "sarama-0", seedsFrom(nodes, n3))
	ms.franz(nextG, "next-0", seedsFrom(nodes, n1), serverSide)
	pause(2 * time.Second)
	step("second members: range-1 via node 2, coop-1 via node 3, kafkago-0 via node 1, next-1 via node 2")
	ms.franz(rangeG, "range-1", seedsFrom(nodes, n2), kgo.Balancers(kgo.RangeBalancer()))
	ms.franz(coopG, "coop-1", seedsFrom(nodes, n3), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	ms.kafkaGo(mixedG, "kafkago-0", seedsFrom(nodes, n1))
	ms.franz(nextG, "next-1", seedsFrom(nodes, n2), serverSide)
	pause(2 * time.Second)
	step("third members: range-2 via node 3, coop-2 via node 1, sarama-1 via node 2, next-2 via node 3")
	ms.franz(rangeG, "range-2", seedsFrom(nodes, n3), kgo.Balancers(kgo.RangeBalancer()))
	ms.franz(coopG, "coop-2", seedsFrom(nodes, n1), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	ms.sarama(mixedG, "sarama-1", seedsFrom(nodes, n2))
	ms.franz(nextG, "next-2", seedsFrom(nodes, n3), serverSide)
	pause(3 * time.Second)

	// The coordinator: every node must name the same, the leader of the
	// groups' partition of __consumer_offsets. The one killed is the one
	// a client (kadm) is told, even if the nodes disagree.
	for _, g := range groups {
		if id, d, err := waitCoordinator(nodes, g.name, 5*time.Second); err != nil {
			t.Errorf("%v: %v", at(), err)
		} else {
			t.Logf("%v: every node names node %d as %s's coordinator (after %v)", at(), id, g.name, d.Round(time.Millisecond))
		}
	}
	found := adm.FindGroupCoordinators(ctx, names...)
	for _, name := range names {
		t.Logf("%v: kadm: %s is coordinated by node %d (%v)", at(), name, found[name].NodeID, found[name].Err)
	}
	fc := found[rangeG.name]
	if fc.Err != nil || fc.NodeID < 1 || int(fc.NodeID) > len(nodes) {
		t.Fatalf("no coordinator for %s: %+v", rangeG.name, fc)
	}
	victim := nodes[fc.NodeID-1]
	var survivors []*clusterNode
	for _, nd := range nodes {
		if nd != victim {
			survivors = append(survivors, nd)
		}
	}
	step(fmt.Sprintf("SIGKILL node %d, the coordinator", victim.id))
	killedAt := time.Now()
	victim.kill()
	pause(time.Second)
	step("while the coordinator is down: range-0, coop-0, sarama-0 and next-0 leave; range-3, coop-3, kafkago-1 and next-3 join")
	ms.stop("range-0", "coop-0", "sarama-0", "next-0")
	ms.franz(nextG, "next-3", seedsFrom(nodes, survivors[1]), serverSide)
	ms.franz(rangeG, "range-3", seedsFrom(nodes, survivors[0]), kgo.Balancers(kgo.RangeBalancer()))
	ms.franz(coopG, "coop-3", seedsFrom(nodes, survivors[1]), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	ms.kafkaGo(mixedG, "kafkago-1", seedsFrom(nodes, survivors[0]))
	if id, _, err := waitCoordinator(survivors, rangeG.name, 10*time.Second); err != nil {
		t.Errorf("%v: after the kill: %v", at(), err)
	} else {
		t.Logf("%v: the survivors name node %d as the coordinator, %v after the kill", at(), id, time.Since(killedAt).Round(time.Millisecond))
	}
	pause(2 * time.Second)
	step(fmt.Sprintf("restart node %d", victim.id))
	victim.restart()
	watch.markRestart()
	pause(2 * time.Second)
	step(fmt.Sprintf("range-1, coop-1, kafkago-0 and next-1 leave; range-4, coop-4, sarama-2 and next-4 join via node %d", victim.id))
	ms.stop("range-1", "coop-1", "kafkago-0", "next-1")
	ms.franz(nextG, "next-4", seedsFrom(nodes, victim), serverSide)
	ms.franz(rangeG, "range-4", seedsFrom(nodes, victim), kgo.Balancers(kgo.RangeBalancer()))
	ms.franz(coopG, "coop-4", seedsFrom(nodes, victim), kgo.Balancers(kgo.CooperativeStickyBalancer()))
	ms.sarama(mixedG, "sarama-2", seedsFrom(nodes, victim))
	pause(4 * time.Second)

	step("stop producing")
	stopProducing()
	want := acks.acknowledged()
	step(fmt.Sprintf("%d records acknowledged; waiting for every group to consume them", len(want)))
	for _, g := range groups {
		deadline := time.Now().Add(45 * time.Second)
		missing := g.seen.missing(want)
		for len(missing) > 0 && time.Now().Before(deadline) {
			pause(100 * time.Millisecond)
			missing = g.seen.missing(want)
		}
		if len(missing) > 0 {
			t.Errorf("group %s: %d of %d acknowledged records never consumed, e.g. %v (holdings now %v)",
				g.name, len(missing), len(want), missing[:min(5, len(missing))], g.owners.holdings())
		} else {
			t.Logf("%v: group %s consumed every acknowledged record; records per member %v", at(), g.name, g.seen.shares())
		}
	}
	step("every member leaves")
	ms.stopAll(60 * time.Second)
	stopWatching()
	watchDone()
	watch.sample(ctx, seedsFrom(nodes, nodes[0]), names) // what the members committed as they left

	for _, g := range groups {
		g.owners.check(t)
	}
	for i, d := range watch.drops {
		if i == 20 {
			t.Errorf("... %d committed offsets seen going back, in all", len(watch.drops))
			break
		}
		t.Error(d)
	}
	for _, name := range names {
		t.Logf("group %s: committed offsets sampled %d times, %d since the restart; at the end %v",
			name, watch.ok[name], watch.after[name], watch.highest(name))
		if watch.after[name] == 0 {
			t.Errorf("group %s: no committed offsets could be fetched after the coordinator's restart", name)
		}
	}
	if failed := acks.failed; len(failed) > 0 {
		t.Logf("records the producer gave up on (allowed while a leader is killed): %v", failed)
	}
}

// TestClusterGroupJoinTime starts ten franz-go members of one group at
// once, each reaching a three-node cluster through a different broker
// first, and logs how long after the last started every one holds
// partitions of a 12-partition topic, for the range and the
// cooperative-sticky balancers and KIP-848's server-side assignment. Only correctness is asserted: each
// partition ends up held by exactly one member, and no partition is ever
// assigned while another member holds it.
func TestClusterGroupJoinTime(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const topic, partitions, members = "join-events", 12, 10
	nodes, adm := startGroupCluster(ctx, t, topic, partitions)
	for _, bal := range []struct {
		name   string
		assign kgo.GroupOpt
	}{
		{"range", kgo.Balancers(kgo.RangeBalancer())},
		{"cooperative-sticky", kgo.Balancers(kgo.CooperativeStickyBalancer())},
		{"kip848", kgo.ServerSideBalancer()},
	} {
		t.Run(bal.name, func(t *testing.T) {
			g := newClusterGroup("join-"+bal.name, topic, time.Now())
			// Only the members' joining is timed: __consumer_offsets is
			// created, and the group's partition of it led and loaded,
			// before they start.
			if id, d, err := waitCoordinator(nodes, g.name, 5*time.Second); err != nil {
				t.Errorf("before the members start: %v", err)
			} else {
				t.Logf("every node names node %d as %s's coordinator (after %v)", id, g.name, d.Round(time.Millisecond))
			}
			ms := newGroupMembers(t)
			var names []string
			first := time.Now()
			for i := range members {
				name := fmt.Sprintf("member-%d", i)
				names = append(names, name)
				ms.franz(g, name, seedsFrom(nodes, nodes[i%len(nodes)]), bal.assign)
			}
			// Polled every 2 ms: waitFor's 50 ms would be most of it.
			last := time.Now()
			err := g.owners.complete(names, partitions)
			for err != nil && time.Since(last) < 15*time.Second {
				time.Sleep(2 * time.Millisecond)
				err = g.owners.complete(names, partitions)
			}
			d := time.Since(last)
			if err != nil {
				t.Logf("the members reported: %s", g.owners.history())
				if dg, derr := adm.DescribeGroups(ctx, g.name); derr == nil {
					for _, m := range dg[g.name].Members {
						c, _ := m.Assigned.AsConsumer()
						t.Logf("the coordinator (DescribeGroups, %s) has %s assigned %+v", dg[g.name].State, m.ClientID, c)
					}
				}
				t.Fatalf("not every member holding partitions, each partition held once, within %v: %v", d.Round(time.Millisecond), err)
			}
			t.Logf("%d members (%s): every one holds partitions %v after the last started (%v after the first)",
				members, bal.name, d.Round(time.Millisecond), time.Since(first).Round(time.Millisecond))

			// The coordinator agrees with what the members hold.
			dg := waitGroup(ctx, t, adm, g.name, "Stable", members)
			count := map[int32]int{}
			for _, m := range dg.Members {
				if c, ok := m.Assigned.AsConsumer(); ok {
					for _, tp := range c.Topics {
						for _, p := range tp.Partitions {
							count[p]++
						}
					}
				}
			}
			for p := range int32(partitions) {
				if count[p] != 1 {
					t.Errorf("DescribeGroups: partition %d assigned to %d members (%v)", p, count[p], count)
				}
			}
			ms.stopAll(60 * time.Second)
			g.owners.check(t)
		})
	}
}
