package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// buildWeir builds github.com/weirmq/weir/cmd/weir into a temporary
// directory and returns the binary and a function that removes it.
func buildWeir(ctx context.Context, verbose bool) (string, func(), error) {
	dir, err := os.MkdirTemp("", "weir-bench-bin")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	bin := filepath.Join(dir, "weir")
	if verbose {
		fmt.Fprintln(os.Stderr, "weir: building github.com/weirmq/weir/cmd/weir")
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/weirmq/weir/cmd/weir")
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("go build github.com/weirmq/weir/cmd/weir (run weir-bench inside the module): %v\n%s", err, out)
	}
	return bin, cleanup, nil
}

// weirProcess is a Weir broker started by the benchmark.
type weirProcess struct {
	name   string // for messages: "weir", "node 2"
	dir    string // temporary: its log and its data
	addr   string // the Kafka listener
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{} // closed once the process has been waited for
}

// launchWeir starts bin with args, its output to a log in dir (which it
// then owns), without waiting for it to listen on addr.
func launchWeir(bin, name, dir, addr string, verbose bool, args []string) (*weirProcess, error) {
	w := &weirProcess{name: name, dir: dir, addr: addr, exited: make(chan struct{})}
	var err error
	if w.log, err = os.Create(filepath.Join(dir, "weir.log")); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	w.cmd = exec.Command(bin, args...)
	w.cmd.Stdout, w.cmd.Stderr = w.log, w.log
	if err := w.cmd.Start(); err != nil {
		w.log.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { w.cmd.Wait(); close(w.exited) }()
	if verbose {
		fmt.Fprintf(os.Stderr, "%s: pid %d, weir %s\n", name, w.cmd.Process.Pid, strings.Join(args, " "))
	}
	return w, nil
}

// waitListening waits until the broker accepts connections on its Kafka
// listener.
func (w *weirProcess) waitListening(ctx context.Context) error {
	for {
		c, err := net.DialTimeout("tcp", w.addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-w.exited:
			return fmt.Errorf("%s exited at startup: %v\n%s", w.name, w.cmd.ProcessState, w.logTail(20))
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s to listen: %w", w.name, w.addr, ctx.Err())
		case <-time.After(20 * time.Millisecond): // poll until it listens
		}
	}
}

// startWeir starts bin as a one-node broker on a free loopback port with a
// temporary log directory, adding extra to its arguments.
func startWeir(ctx context.Context, bin string, verbose bool, extra ...string) (*weirProcess, error) {
	dir, err := os.MkdirTemp("", "weir-bench")
	if err != nil {
		return nil, err
	}
	addrs, err := freeAddrs(1)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := append([]string{"--listeners", "PLAINTEXT://" + addrs[0], "--log-dirs", filepath.Join(dir, "data")}, extra...)
	w, err := launchWeir(bin, "weir", dir, addrs[0], verbose, args)
	if err != nil {
		return nil, err
	}
	if err := w.waitListening(ctx); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// close stops the broker (SIGTERM, then SIGKILL after 15 s) and removes its
// temporary directory.
func (w *weirProcess) close() { w.stop(15*time.Second, 0) }

// stop sends the broker SIGTERM, which starts a controlled shutdown; if it
// still runs after grace and again > 0, SIGTERM again (weir then stops at
// once) and wait again; then SIGKILL. It removes the temporary directory.
func (w *weirProcess) stop(grace, again time.Duration) {
	w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.exited:
	case <-time.After(grace):
		if again > 0 {
			w.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-w.exited:
			case <-time.After(again):
			}
		}
		w.cmd.Process.Kill()
		<-w.exited
	}
	w.log.Close()
	os.RemoveAll(w.dir)
}

// logTail returns the last n lines of the broker's log.
func (w *weirProcess) logTail(n int) string {
	f, err := os.Open(w.log.Name())
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if lines = append(lines, sc.Text()); len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// cluster is a cluster of Weir processes on loopback, each a broker and a
// voter of the metadata quorum, as in the README's three-node cluster.
type cluster struct {
	dir   string // temporary: a directory per node
	nodes []*weirProcess
	// One client per node, whose seed broker is that node, to ask each
	// node (not whichever one a client picks) for its metadata.
	clients []*kgo.Client
}

// startCluster starts n nodes with node ids 1..n, adding extra to each
// one's arguments, and waits until every node lists all n brokers and an
// active controller among them.
func startCluster(ctx context.Context, bin string, n int, verbose bool, extra ...string) (*cluster, error) {
	dir, err := os.MkdirTemp("", "weir-bench-cluster")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	addrs, err := freeAddrs(2 * n) // a Kafka and a controller listener each
	if err != nil {
		c.close()
		return nil, err
	}
	var voters []string
	for i := range n {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, addrs[n+i]))
	}
	for i := range n {
		nodeDir := filepath.Join(dir, fmt.Sprintf("n%d", i+1))
		if err := os.Mkdir(nodeDir, 0o755); err != nil {
			c.close()
			return nil, err
		}
		args := append([]string{
			"--node-id", fmt.Sprint(i + 1),
			"--process-roles", "broker,controller",
			"--listeners", "PLAINTEXT://" + addrs[i] + ",CONTROLLER://" + addrs[n+i],
			"--controller-listener-names", "CONTROLLER",
			"--controller-quorum-voters", strings.Join(voters, ","),
			"--log-dirs", filepath.Join(nodeDir, "data"),
		}, extra...)
		w, err := launchWeir(bin, fmt.Sprintf("node %d", i+1), nodeDir, addrs[i], verbose, args)
		if err != nil {
			c.close()
			return nil, err
		}
		c.nodes = append(c.nodes, w)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addrs[i]))
		if err != nil {
			c.close()
			return nil, err
		}
		c.clients = append(c.clients, cl)
	}
	start := time.Now()
	for _, w := range c.nodes {
		if err := w.waitListening(ctx); err != nil {
			c.close()
			return nil, err
		}
	}
	if err := retry(ctx, 60*time.Second, func() error { return c.formed(ctx) }); err != nil {
		err = fmt.Errorf("the cluster did not form: %w\n%s", err, c.logTails(20))
		c.close()
		return nil, err
	}
	if verbose {
		fmt.Fprintf(os.Stderr, "replicated: %d nodes formed a cluster in %v\n", n, time.Since(start).Round(time.Millisecond))
	}
	return c, nil
}

// metadata asks node i for metadata, of topic or (topic "") of no topics.
func (c *cluster) metadata(ctx context.Context, i int, topic string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	if topic != "" {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, t)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := c.clients[i].SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: metadata: %w", c.nodes[i].name, err)
	}
	return resp.(*kmsg.MetadataResponse), nil
}

// formed checks that every node lists every broker and a controller among
// them.
func (c *cluster) formed(ctx context.Context) error {
	for i := range c.nodes {
		m, err := c.metadata(ctx, i, "")
		if err != nil {
			return err
		}
		var ids []int32
		for _, b := range m.Brokers {
			ids = append(ids, b.NodeID)
		}
		if len(ids) != len(c.nodes) || !slices.Contains(ids, m.ControllerID) {
			return fmt.Errorf("%s: brokers %v, controller %d", c.nodes[i].name, ids, m.ControllerID)
		}
	}
	return nil
}

// minISR returns the smallest ISR among topic's partitions over every
// node's metadata, after checking that each node shows the topic's
// partitions with replicationFactor replicas each, led by an ISR member;
// with full, it also fails unless every ISR holds every replica.
func (c *cluster) minISR(ctx context.Context, topic string, partitions int, full bool) (int, error) {
	least := replicationFactor
	for i := range c.nodes {
		m, err := c.metadata(ctx, i, topic)
		if err != nil {
			return 0, err
		}
		name := c.nodes[i].name
		if len(m.Topics) != 1 {
			return 0, fmt.Errorf("%s: %d topics in the metadata of %s", name, len(m.Topics), topic)
		}
		t := m.Topics[0]
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, fmt.Errorf("%s: %s: %w", name, topic, err)
		}
		if len(t.Partitions) != partitions {
			return 0, fmt.Errorf("%s: %s has %d partitions, want %d", name, topic, len(t.Partitions), partitions)
		}
		for _, p := range t.Partitions {
			switch {
			case kerr.ErrorForCode(p.ErrorCode) != nil && !errors.Is(kerr.ErrorForCode(p.ErrorCode), kerr.ReplicaNotAvailable):
				return 0, fmt.Errorf("%s: %s/%d: %w", name, topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			case len(p.Replicas) != replicationFactor:
				return 0, fmt.Errorf("%s: %s/%d: replicas %v, want %d", name, topic, p.Partition, p.Replicas, replicationFactor)
			case !slices.Contains(p.ISR, p.Leader):
				return 0, fmt.Errorf("%s: %s/%d: leader %d not in the ISR %v", name, topic, p.Partition, p.Leader, p.ISR)
			case full && len(p.ISR) != replicationFactor:
				return 0, fmt.Errorf("%s: %s/%d: ISR %v of replicas %v", name, topic, p.Partition, p.ISR, p.Replicas)
			}
			least = min(least, len(p.ISR))
		}
	}
	return least, nil
}

// addrs returns the nodes' Kafka listeners.
func (c *cluster) addrs() []string {
	var a []string
	for _, w := range c.nodes {
		a = append(a, w.addr)
	}
	return a
}

// pids returns the nodes' process ids.
func (c *cluster) pids() []int {
	var p []int
	for _, w := range c.nodes {
		p = append(p, w.cmd.Process.Pid)
	}
	return p
}

// logTails returns the last n lines of every node's log.
func (c *cluster) logTails(n int) string {
	var b strings.Builder
	for _, w := range c.nodes {
		fmt.Fprintf(&b, "%s (%s) log ends with:\n%s\n", w.name, w.addr, w.logTail(n))
	}
	return b.String()
}

// close stops every node at once and removes the cluster's directory. The
// last node to stop has no quorum left for its controlled shutdown, and
// would wait 30 s for one: after 5 s a second SIGTERM stops it.
func (c *cluster) close() {
	for _, cl := range c.clients {
		cl.Close()
	}
	var wg sync.WaitGroup
	for _, w := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); w.stop(5*time.Second, 10*time.Second) }()
	}
	wg.Wait()
	os.RemoveAll(c.dir)
}

// freeAddrs returns n distinct loopback addresses with ports that were free
// a moment ago.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close() // held until all are picked, so that they differ
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
