package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KIP-848 consumer groups end to end with franz-go's next-gen consumer
// (kgo.ServerSideBalancer): the broker assigns, members reconcile through
// ConsumerGroupHeartbeat, and commits carry member epochs.

// group848Flags shorten the KIP-848 heartbeat and session so that members
// leaving and joining are seen quickly.
var group848Flags = append(append([]string{}, groupBrokerFlags...),
	"--override", "group.consumer.min.heartbeat.interval.ms=100",
	"--override", "group.consumer.heartbeat.interval.ms=200",
	"--override", "group.consumer.min.session.timeout.ms=1000",
	"--override", "group.consumer.session.timeout.ms=6000",
)

// member848 is one consumer that processes each poll, commits it, and only
// then lets a revocation happen, so every record is consumed once overall
// as long as the commits go through; failed commits are counted.
type member848 struct {
	cl         *kgo.Client
	done       chan struct{}
	commitErrs atomic.Int64
}

func startMember848(ctx context.Context, t *testing.T, addr, group, topic, who string, seen *groupSeen) *member848 {
	t.Helper()
	m := &member848{done: make(chan struct{})}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr), kgo.ClientID(who),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, _ map[string][]int32) {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				m.commitErrs.Add(1)
				t.Logf("%s: commit on revocation: %v", who, err)
			}
		}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			fs := cl.PollFetches(ctx)
			if fs.IsClientClosed() || ctx.Err() != nil {
				return
			}
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) && !errors.Is(err, kgo.ErrClientClosed) {
					t.Errorf("%s: fetch %s/%d: %v", who, topic, p, err)
				}
			})
			fs.EachRecord(func(r *kgo.Record) { seen.add(who, string(r.Value)) })
			if err := cl.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
				m.commitErrs.Add(1)
				t.Logf("%s: commit: %v", who, err)
			}
			cl.AllowRebalance()
		}
	}()
	return m
}

// leave closes the member: it commits what it processed, leaves the group
// (epoch -1) and stops. It returns how many commits failed.
func (m *member848) leave() int64 {
	m.cl.Close()
	<-m.done
	return m.commitErrs.Load()
}

// waitConsumerGroup waits until the group is Stable with the named
// members, each at the group's assignment epoch with a share of the
// partitions.
func waitConsumerGroup(ctx context.Context, t *testing.T, adm *kadm.Client, group string, clientIDs ...string) kadm.DescribedConsumerGroup {
	t.Helper()
	for {
		gs, err := adm.DescribeConsumerGroups(ctx, group)
		g := gs[group]
		if err == nil && g.Err == nil && g.State == "Stable" && len(g.Members) == len(clientIDs) {
			ok := true
			for _, m := range g.Members {
				ok = ok && m.MemberEpoch == g.AssignmentEpoch && len(m.Assignment) > 0
			}
			if ok {
				return g
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("consumer group %s never became stable with %v (last: %+v, %v)", group, clientIDs, g, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestGroup848Franz(t *testing.T) {
	const topic, group = "events848", "group-848"
	b, ctx, adm := startGroupTest(t, 60*time.Second, topic, group848Flags...)

	seen := newGroupSeen()
	members := map[string]*member848{}
	for i := 0; i < 3; i++ {
		who := fmt.Sprintf("member-%d", i)
		members[who] = startMember848(ctx, t, b.addr, group, topic, who, seen)
	}
	g := waitConsumerGroup(ctx, t, adm, group, "member-0", "member-1", "member-2")
	if g.AssignorName != "uniform" {
		t.Fatalf("assignor %q, want uniform (franz-go asks for it with its sticky balancer)", g.AssignorName)
	}
	for _, m := range g.Members {
		if m.MemberType != 1 || m.ClientHost != "/127.0.0.1" {
			t.Fatalf("member %+v", m)
		}
	}
	want := produceGroupRecords(ctx, t, b.addr, topic, "a", 600)
	seen.waitAll(ctx, t, want)

	// One member leaves and another joins; the group moves on without
	// consuming anything twice.
	failed := members["member-2"].leave()
	delete(members, "member-2")
	members["member-3"] = startMember848(ctx, t, b.addr, group, topic, "member-3", seen)
	waitConsumerGroup(ctx, t, adm, group, "member-0", "member-1", "member-3")
	want = append(want, produceGroupRecords(ctx, t, b.addr, topic, "b", 600)...)
	seen.waitAll(ctx, t, want)
	for _, m := range members {
		failed += m.leave()
	}
	if failed != 0 {
		t.Fatalf("%d commits failed", failed)
	}
	checkConsumedOnce(t, seen, want)
	t.Logf("records consumed per member: %v", seen.shares())
	if total := committedTotal(ctx, t, adm, group); total != int64(len(want)) {
		t.Fatalf("committed offsets sum to %d, want %d", total, len(want))
	}

	// The offsets survive a restart of the broker: a new member resumes
	// after them and gets only new records.
	adm = restart848(t, b)
	more := produceGroupRecords(ctx, t, b.addr, topic, "c", 60)
	after := newGroupSeen()
	last := startMember848(ctx, t, b.addr, group, topic, "member-4", after)
	after.waitAll(ctx, t, more)
	if failed := last.leave(); failed != 0 {
		t.Fatalf("%d commits failed", failed)
	}
	checkConsumedOnce(t, after, more)
	gs, err := adm.DescribeConsumerGroups(ctx, group)
	if err != nil || gs[group].State != "Empty" {
		t.Fatalf("group after every member left: %+v %v", gs[group], err)
	}
}

// restart848 stops the broker with SIGTERM, which must end it cleanly,
// starts it again with group848Flags, and returns an admin client of the
// new process.
func restart848(t *testing.T, b *process) *kadm.Client {
	t.Helper()
	if code := b.stop(); code != 0 {
		t.Fatalf("broker exited with %d\n%s", code, b.log.String())
	}
	b.start(group848Flags...)
	return kadm.NewClient(newClient(t, b.addr))
}

// checkConsumedOnce fails unless exactly the values in want were consumed,
// each once.
func checkConsumedOnce(t *testing.T, seen *groupSeen, want []string) {
	t.Helper()
	got := seen.values()
	if len(got) != len(want) {
		t.Fatalf("consumed %d distinct values, want %d", len(got), len(want))
	}
	seen.mu.Lock()
	defer seen.mu.Unlock()
	for _, v := range want {
		if n := seen.vals[v]; n != 1 {
			t.Fatalf("value %s consumed %d times", v, n)
		}
	}
}

// A broker restart while members consume: the coordinator that comes back
// replays the group's records and the members carry on at the epochs they
// had, without a rebalance, and nothing is lost.
func TestGroup848RestartKeepsEpochs(t *testing.T) {
	const topic, group = "restart848", "group-848-restart"
	b, ctx, adm := startGroupTest(t, 60*time.Second, topic, group848Flags...)
	seen := newGroupSeen()
	m0 := startMember848(ctx, t, b.addr, group, topic, "member-0", seen)
	m1 := startMember848(ctx, t, b.addr, group, topic, "member-1", seen)
	before := waitConsumerGroup(ctx, t, adm, group, "member-0", "member-1")
	want := produceGroupRecords(ctx, t, b.addr, topic, "a", 300)
	seen.waitAll(ctx, t, want)

	adm = restart848(t, b)
	after := waitConsumerGroup(ctx, t, adm, group, "member-0", "member-1")
	if after.Epoch != before.Epoch {
		t.Fatalf("group epoch %d after the restart, %d before", after.Epoch, before.Epoch)
	}
	want = append(want, produceGroupRecords(ctx, t, b.addr, topic, "b", 300)...)
	seen.waitAll(ctx, t, want)
	m0.leave()
	m1.leave()
	// Commits may fail while the broker is down, so a record may come
	// twice; none may be missing.
	t.Logf("records consumed per member: %v", seen.shares())
}
