package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterWipedBrokerRejoins: three voters and broker-only nodes 4
// and 5; a topic of replication factor 3 and min.insync.replicas 2 is
// placed on 4, 5, 1 (4 preferred) under an acks=all producer. Nodes 5 and 1
// are frozen (SIGSTOP) until leader 4 shrinks the ISR to itself alone (the
// high watermark then stops: 5 and 1 become eligible leaders holding every
// committed record). Then node 4, the last ISR member, is SIGKILLed, its
// data directory deleted, and started again while 5 and 1 are still
// frozen: it registers with a new log directory id, so the controller must
// not let it lead with its empty log although no other replica can. Once
// 5 and 1 resume, one of them leads, and 4 fetches the partition again
// and rejoins the ISR. A preferred election makes it the leader
// again, and every acknowledged record is read back from it, at its
// offset. (Kafka without KIP-966 would elect node 4 and lose them.)
func TestClusterWipedBrokerRejoins(t *testing.T) {
	nodes := startClusterWith(t, 3,
		"--override", "broker.session.timeout.ms=3000",
		"--override", "broker.heartbeat.interval.ms=500",
		"--override", "replica.lag.time.max.ms=2500")
	wiped, other := addBroker(t, nodes, 4), addBroker(t, nodes, 5)
	all := append(slices.Clone(nodes), wiped, other)
	resumeAtCleanup(t, all)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	waitFor(t, 60*time.Second, "five brokers on every node", func() error {
		_, err := agreeOnCluster(all, []int32{1, 2, 3, 4, 5})
		return err
	})
	var seeds []string
	for _, nd := range all {
		seeds = append(seeds, nd.addr)
	}
	const topic = "wiped"
	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = topic, -1, -1
	ct.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{4, 5, 1}}}
	ct.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "min.insync.replicas", Value: kadm.StringPtr("2")}}
	create.Version, create.Topics, create.TimeoutMillis = 7, []kmsg.CreateTopicsRequestTopic{ct}, 10000
	waitFor(t, 30*time.Second, "create "+topic, func() error {
		resp, err := nodeRequest(nodes[0].addr, create)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode); err != nil && err != kerr.TopicAlreadyExists {
			return err
		}
		return nil
	})
	tp := topicPart{topic, 0}
	parts := []topicPart{tp}
	// state waits until every voter that is not frozen shows the
	// partition as want says.
	frozen := nodes[0]
	state := func(what string, want func(partState) error) {
		t.Helper()
		d := waitFor(t, 60*time.Second, what, func() error {
			for _, nd := range nodes {
				if nd == frozen {
					continue
				}
				st, err := partitionStates(nd.addr, topic)
				if err != nil {
					return err
				}
				if err := want(st[tp]); err != nil {
					return fmt.Errorf("node %d: %w", nd.id, err)
				}
			}
			return nil
		})
		t.Logf("%s after %v", what, d.Round(time.Millisecond))
	}
	ledBy4InFullISR := func(p partState) error {
		if p.leader != 4 || len(p.isr) != 3 {
			return fmt.Errorf("leader %d, ISR %v", p.leader, p.isr)
		}
		return nil
	}
	frozen = nil
	state("node 4 leads with a full ISR", ledBy4InFullISR)

	prod := clusterClient(t, seeds, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProduceRequestTimeout(5*time.Second), kgo.MetadataMinAge(250*time.Millisecond), kgo.MaxBufferedRecords(2000))
	acks := newAckLog()
	stopProducing := produceAcked(ctx, prod, acks, parts, 0)
	waitProgress(t, acks, parts, map[topicPart]int{}, 500, 60*time.Second, "acknowledgements before the disk loss")

	frozen = nodes[0]
	other.sigstop()
	frozen.sigstop()
	state("node 4 alone in the ISR", func(p partState) error {
		if p.leader != 4 || !slices.Equal(p.isr, []int32{4}) {
			return fmt.Errorf("leader %d, ISR %v", p.leader, p.isr)
		}
		return nil
	})
	wiped.kill()
	if err := os.RemoveAll(wiped.dataDir); err != nil {
		t.Fatal(err)
	}
	t.Logf("node 4, the last ISR member, killed and its data directory deleted; %d records acknowledged", acks.total())
	state("no leader: node 4 fenced, the eligible replicas frozen", func(p partState) error {
		if p.leader != -1 {
			return fmt.Errorf("leader %d, ISR %v", p.leader, p.isr)
		}
		return nil
	})
	before := acks.counts()
	wiped.restart()
	// Node 4 is back, registered with its new, empty directory, and the
	// only replica able to lead: it must not.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		for _, nd := range nodes[1:] {
			if st, err := partitionStates(nd.addr, topic); err == nil && st[tp].leader == 4 {
				t.Fatalf("node %d: node 4 leads with an empty log (ISR %v)", nd.id, st[tp].isr)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	other.sigcont()
	frozen.sigcont()
	frozen = nil
	state("an eligible replica leads, node 4 not in the ISR yet or fetched back", func(p partState) error {
		if p.leader == 4 || p.leader < 0 {
			return fmt.Errorf("leader %d, ISR %v", p.leader, p.isr)
		}
		return nil
	})
	state("node 4 back in the ISR, its copy fetched again", func(p partState) error {
		if !slices.Contains(p.isr, 4) || len(p.isr) != 3 {
			return fmt.Errorf("leader %d, ISR %v", p.leader, p.isr)
		}
		return nil
	})
	waitProgress(t, acks, parts, before, 500, 60*time.Second, "acknowledgements after node 4 came back")

	adm := kadm.NewClient(clusterClient(t, seeds))
	waitFor(t, 30*time.Second, "a preferred election for node 4", func() error {
		rs, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {0: {}}})
		if err != nil {
			return err
		}
		if r := rs[topic][0]; r.Err != nil && r.Err != kerr.ElectionNotNeeded {
			return r.Err
		}
		return nil
	})
	state("node 4 leads again", ledBy4InFullISR)
	stopProducing(t)
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Read from the leader, node 4: what it fetched back must be all.
	verifyAcked(ctx, t, adm, seeds, acks, parts, nil, true)
}
