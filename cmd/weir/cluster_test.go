package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirmq/weir/core/wire"
)

// lockedBuffer is a process's output, readable while the process runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clusterNode is one weir process of a test cluster, with the broker and
// controller roles, a client (PLAINTEXT) and a controller listener.
type clusterNode struct {
	t        *testing.T
	id       int32
	addr     string // the Kafka clients' listener
	ctrlAddr string // the controller (peer) listener; "" for a broker-only node
	dataDir  string
	voters   string
	extra    []string // more arguments to weir, e.g. --override key=value
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *lockedBuffer
}

// startCluster starts n combined broker+controller nodes on loopback, each
// a voter of the metadata quorum, and waits until each listens.
func startCluster(t *testing.T, n int) []*clusterNode {
	t.Helper()
	return startClusterWith(t, n)
}

// startClusterWith is startCluster with more arguments to every node
// (kept across restarts).
func startClusterWith(t *testing.T, n int, extra ...string) []*clusterNode {
	t.Helper()
	dir := t.TempDir()
	nodes := make([]*clusterNode, n)
	var voters []string
	for i := range nodes {
		nodes[i] = &clusterNode{t: t, id: int32(i + 1), addr: freeAddr(t), ctrlAddr: freeAddr(t),
			dataDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), extra: extra, log: &lockedBuffer{}}
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, nodes[i].ctrlAddr))
	}
	t.Cleanup(func() {
		for _, nd := range nodes {
			nd.kill()
		}
		if t.Failed() {
			for _, nd := range nodes {
				t.Logf("node %d log:\n%s", nd.id, nd.log.String())
			}
		}
	})
	for _, nd := range nodes {
		nd.voters = strings.Join(voters, ",")
		nd.launch()
	}
	for _, nd := range nodes {
		nd.waitListening()
	}
	return nodes
}

// addBroker starts a broker-only node (no controller role, not a voter)
// with id next to the voters of nodes, and the same extra arguments.
func addBroker(t *testing.T, nodes []*clusterNode, id int32) *clusterNode {
	t.Helper()
	first := nodes[0]
	nd := &clusterNode{t: t, id: id, addr: freeAddr(t), dataDir: filepath.Join(filepath.Dir(first.dataDir), fmt.Sprintf("n%d", id)),
		voters: first.voters, extra: first.extra, log: &lockedBuffer{}}
	t.Cleanup(func() {
		nd.kill()
		if t.Failed() {
			t.Logf("node %d log:\n%s", nd.id, nd.log.String())
		}
	})
	nd.launch()
	nd.waitListening()
	return nd
}

// launch starts the process without waiting for it.
func (nd *clusterNode) launch() {
	nd.t.Helper()
	listeners, roles := "PLAINTEXT://"+nd.addr+",CONTROLLER://"+nd.ctrlAddr, "broker,controller"
	if nd.ctrlAddr == "" {
		listeners, roles = "PLAINTEXT://"+nd.addr, "broker"
	}
	nd.cmd = exec.Command(weirBinary, append([]string{
		"--node-id", fmt.Sprint(nd.id),
		"--process-roles", roles,
		"--listeners", listeners,
		"--controller-listener-names", "CONTROLLER",
		"--controller-quorum-voters", nd.voters,
		"--log-dirs", nd.dataDir}, nd.extra...)...)
	nd.cmd.Stdout, nd.cmd.Stderr = nd.log, nd.log
	if err := nd.cmd.Start(); err != nil {
		nd.t.Fatal(err)
	}
	exited := make(chan struct{})
	nd.exited = exited
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(exited)
	}(nd.cmd)
}

// waitListening waits until the node accepts Kafka connections.
func (nd *clusterNode) waitListening() {
	nd.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-nd.exited:
			nd.t.Fatalf("node %d exited at start: %v\n%s", nd.id, nd.cmd.ProcessState, nd.log.String())
		default:
		}
		c, err := net.DialTimeout("tcp", nd.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			nd.t.Fatalf("node %d did not listen on %s: %v", nd.id, nd.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (nd *clusterNode) kill() {
	if nd.cmd == nil {
		return
	}
	select {
	case <-nd.exited:
	default:
		nd.cmd.Process.Kill()
		<-nd.exited
	}
}

// restart starts the node again on the same ports and data.
func (nd *clusterNode) restart() {
	nd.t.Helper()
	fmt.Fprintf(nd.log, "----- restart -----\n")
	nd.launch()
	nd.waitListening()
}

// clusterClient is a client bootstrapped to every seed, closed at cleanup.
func clusterClient(t *testing.T, seeds []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// nodeRequest sends one request to the node at addr (that node, not
// whichever one a client would pick) and returns its response.
func nodeRequest(addr string, req kmsg.Request) (kmsg.Response, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	id := "cluster-test"
	if _, err := c.Write(wire.AppendRequest(nil, wire.RequestHeader{APIKey: req.Key(), APIVersion: req.GetVersion(), CorrelationID: 1, ClientID: &id}, req)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, frame); err != nil {
		return nil, err
	}
	_, resp, err := wire.ParseResponse(frame, req.Key(), req.GetVersion())
	return resp, err
}

// nodeMetadata is a node's own Metadata answer (all topics).
func nodeMetadata(addr string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	resp, err := nodeRequest(addr, req)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.MetadataResponse), nil
}

func brokerIDs(m *kmsg.MetadataResponse) []int32 {
	var ids []int32
	for _, b := range m.Brokers {
		ids = append(ids, b.NodeID)
	}
	slices.Sort(ids)
	return ids
}

// waitFor polls cond until it returns nil, failing the test with its last
// error after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < timeout {
		if err = cond(); err == nil {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %v: %v", what, timeout, err)
	return 0
}

// agreeOnCluster checks that every node in nodes answers Metadata listing
// exactly the brokers want and one controller among them, the same on all.
func agreeOnCluster(nodes []*clusterNode, want []int32) (int32, error) {
	controller := int32(-1)
	for _, nd := range nodes {
		m, err := nodeMetadata(nd.addr)
		if err != nil {
			return -1, fmt.Errorf("node %d: %w", nd.id, err)
		}
		if got := brokerIDs(m); !slices.Equal(got, want) {
			return -1, fmt.Errorf("node %d lists brokers %v, want %v", nd.id, got, want)
		}
		if !slices.Contains(want, m.ControllerID) {
			return -1, fmt.Errorf("node %d names controller %d, not one of %v", nd.id, m.ControllerID, want)
		}
		if controller != -1 && m.ControllerID != controller {
			return -1, fmt.Errorf("nodes disagree on the controller: %d and %d", controller, m.ControllerID)
		}
		controller = m.ControllerID
	}
	return controller, nil
}

// topicsReplicated checks that the node at addr shows each topic with
// partitions partitions of rf replicas among brokers, led by a live ISR
// member, with the ISR a subset of the replicas. (Until replication lands,
// a new partition's ISR is its leader alone.)
func topicsReplicated(addr string, topics []string, partitions, rf int, brokers []int32) error {
	m, err := nodeMetadata(addr)
	if err != nil {
		return err
	}
	byName := map[string]kmsg.MetadataResponseTopic{}
	for _, t := range m.Topics {
		if t.Topic != nil {
			byName[*t.Topic] = t
		}
	}
	for _, name := range topics {
		t, ok := byName[name]
		if !ok {
			return fmt.Errorf("topic %s missing", name)
		}
		if t.ErrorCode != 0 || len(t.Partitions) != partitions {
			return fmt.Errorf("topic %s: error %v, %d partitions, want %d", name, kerr.ErrorForCode(t.ErrorCode), len(t.Partitions), partitions)
		}
		for _, p := range t.Partitions {
			reps := slices.Clone(p.Replicas)
			slices.Sort(reps)
			switch {
			case p.ErrorCode != 0:
				return fmt.Errorf("%s/%d: %v", name, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			case len(reps) != rf || len(slices.Compact(reps)) != rf:
				return fmt.Errorf("%s/%d: replicas %v, want %d distinct", name, p.Partition, p.Replicas, rf)
			case slices.ContainsFunc(reps, func(r int32) bool { return !slices.Contains(brokers, r) }):
				return fmt.Errorf("%s/%d: replicas %v outside brokers %v", name, p.Partition, p.Replicas, brokers)
			case !slices.Contains(p.ISR, p.Leader) || !slices.Contains(brokers, p.Leader):
				return fmt.Errorf("%s/%d: leader %d not a live ISR member (ISR %v, brokers %v)", name, p.Partition, p.Leader, p.ISR, brokers)
			}
			for _, r := range p.ISR {
				if !slices.Contains(p.Replicas, r) {
					return fmt.Errorf("%s/%d: ISR %v not within replicas %v", name, p.Partition, p.ISR, p.Replicas)
				}
			}
		}
	}
	return nil
}

// createTopics creates topics through adm, retrying retriable failures
// (no controller yet, a dead controller) until timeout.
func createTopics(ctx context.Context, t *testing.T, adm *kadm.Client, timeout time.Duration, partitions int32, rf int16, topics ...string) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("create %v (rf %d)", topics, rf), func() error {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := adm.CreateTopics(cctx, partitions, rf, nil, topics...)
		if err != nil {
			return err
		}
		var errs []error
		for _, r := range resp.Sorted() {
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("%s: %w", r.Topic, r.Err))
			}
		}
		return errors.Join(errs...)
	})
}

// produceConsume writes a few records to each partition of an RF=1 topic
// through the cluster and reads them back.
func produceConsume(ctx context.Context, t *testing.T, seeds []string, topic string, partitions int32) {
	t.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	want := map[string]int32{}
	for p := range partitions {
		for i := range 3 {
			v := fmt.Sprintf("%s-p%d-%d", topic, p, i)
			want[v] = p
			if err := prod.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s to %s/%d: %v", v, topic, p, err)
			}
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for len(want) > 0 {
		fs := cons.PollFetches(cctx)
		if cctx.Err() != nil {
			t.Fatalf("consume %s: %d records not read back: %v", topic, len(want), want)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s/%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if p, ok := want[string(r.Value)]; !ok || p != r.Partition {
				t.Errorf("unexpected record %q at %s/%d@%d", r.Value, r.Topic, r.Partition, r.Offset)
			}
			delete(want, string(r.Value))
		})
	}
}

// TestClusterControllerFailover runs three combined broker+controller
// processes, creates replicated topics, SIGKILLs the active controller,
// requires a new one among the survivors and the cluster to keep serving,
// then restarts the killed node and requires it back.
func TestClusterControllerFailover(t *testing.T) {
	nodes := startCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	all := []int32{1, 2, 3}
	addrs := func(nds []*clusterNode) []string {
		var a []string
		for _, nd := range nds {
			a = append(a, nd.addr)
		}
		return a
	}

	// The quorum elects a controller and every broker registers.
	start := time.Now()
	var controller int32
	waitFor(t, 60*time.Second, "three brokers and a controller on every node", func() (err error) {
		controller, err = agreeOnCluster(nodes, all)
		return err
	})
	t.Logf("cluster formed in %v; controller is node %d", time.Since(start).Round(time.Millisecond), controller)

	adm := kadm.NewClient(clusterClient(t, addrs(nodes)))
	waitFor(t, 30*time.Second, "kadm sees three brokers and a controller", func() error {
		m, err := adm.Metadata(ctx)
		if err != nil {
			return err
		}
		if ids := m.Brokers.NodeIDs(); len(ids) != 3 || !slices.Contains(ids, m.Controller) {
			return fmt.Errorf("brokers %v, controller %d", ids, m.Controller)
		}
		return nil
	})

	// Topics of replication factor 3, created through a node that is not
	// the controller (it forwards to the controller), seen on every node.
	var via *clusterNode
	for _, nd := range nodes {
		if nd.id != controller {
			via = nd
			break
		}
	}
	waitFor(t, 30*time.Second, "create rf3-a through a non-controller node", func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.Version = 7
		req.TimeoutMillis = 10000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "rf3-a", 3, 3
		req.Topics = append(req.Topics, rt)
		resp, err := nodeRequest(via.addr, req)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return err
		}
		return nil
	})
	createTopics(ctx, t, adm, 30*time.Second, 3, 3, "rf3-b", "rf3-c")
	for _, nd := range nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d shows the rf3 topics", nd.id), func() error {
			return topicsReplicated(nd.addr, []string{"rf3-a", "rf3-b", "rf3-c"}, 3, 3, all)
		})
	}

	// Records to every partition of an RF=1 topic (each led by one broker)
	// come back.
	createTopics(ctx, t, adm, 30*time.Second, 3, 1, "rf1-before")
	produceConsume(ctx, t, addrs(nodes), "rf1-before", 3)

	// SIGKILL the active controller; a survivor takes over.
	var victim *clusterNode
	var survivors []*clusterNode
	var survivorIDs []int32
	for _, nd := range nodes {
		if nd.id == controller {
			victim = nd
		} else {
			survivors = append(survivors, nd)
			survivorIDs = append(survivorIDs, nd.id)
		}
	}
	killed := time.Now()
	victim.kill()
	var next int32
	waitFor(t, 30*time.Second, "a new controller among the survivors", func() error {
		next = -1
		for _, nd := range survivors {
			m, err := nodeMetadata(nd.addr)
			if err != nil {
				return fmt.Errorf("node %d: %w", nd.id, err)
			}
			if !slices.Contains(survivorIDs, m.ControllerID) || (next != -1 && next != m.ControllerID) {
				return fmt.Errorf("node %d names controller %d", nd.id, m.ControllerID)
			}
			next = m.ControllerID
		}
		return nil
	})
	failover := time.Since(killed)
	t.Logf("controller failover: node %d SIGKILLed, node %d is the controller on both survivors after %v",
		victim.id, next, failover.Round(time.Millisecond))

	// Creating topics keeps working through the survivors.
	sadm := kadm.NewClient(clusterClient(t, addrs(survivors)))
	createTopics(ctx, t, sadm, 30*time.Second, 2, 2, "after-kill-a")
	t.Logf("first topic created %v after the kill", time.Since(killed).Round(time.Millisecond))
	for _, nd := range survivors {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d shows after-kill-a", nd.id), func() error {
			return topicsReplicated(nd.addr, []string{"after-kill-a"}, 2, 2, all)
		})
	}

	// The killed broker's session expires (broker.session.timeout.ms)
	// and it is fenced; the survivors stay registered and unfenced, past
	// their own session timeout under the new controller.
	waitFor(t, 45*time.Second, "the killed broker fenced, the survivors not", func() error {
		_, err := agreeOnCluster(survivors, survivorIDs)
		return err
	})
	t.Logf("killed broker fenced %v after the kill", time.Since(killed).Round(time.Millisecond))
	createTopics(ctx, t, sadm, 30*time.Second, 2, 1, "rf1-after")
	for _, nd := range survivors {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d shows rf1-after", nd.id), func() error {
			return topicsReplicated(nd.addr, []string{"rf1-after"}, 2, 1, survivorIDs)
		})
	}
	produceConsume(ctx, t, addrs(survivors), "rf1-after", 2)
	stable := time.Now().Add(12 * time.Second) // > broker.session.timeout.ms (9 s)
	for time.Now().Before(stable) {
		if _, err := agreeOnCluster(survivors, survivorIDs); err != nil {
			t.Fatalf("%v after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
		}
		time.Sleep(250 * time.Millisecond)
	}

	// The killed node restarts on its data and rejoins.
	restarted := time.Now()
	victim.restart()
	waitFor(t, 60*time.Second, "three brokers again on every node", func() (err error) {
		controller, err = agreeOnCluster(nodes, all)
		return err
	})
	t.Logf("node %d rejoined %v after its restart; controller is node %d", victim.id,
		time.Since(restarted).Round(time.Millisecond), controller)
	for _, nd := range nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d shows every topic", nd.id), func() error {
			if err := topicsReplicated(nd.addr, []string{"rf3-a", "rf3-b", "rf3-c"}, 3, 3, all); err != nil {
				return err
			}
			return topicsReplicated(nd.addr, []string{"rf1-after"}, 2, 1, all)
		})
	}
	createTopics(ctx, t, adm, 30*time.Second, 3, 3, "after-rejoin")
	for _, nd := range nodes {
		waitFor(t, 30*time.Second, fmt.Sprintf("node %d shows after-rejoin", nd.id), func() error {
			return topicsReplicated(nd.addr, []string{"after-rejoin"}, 3, 3, all)
		})
	}
}
