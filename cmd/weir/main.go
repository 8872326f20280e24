// Command weir runs a Weir broker: a Kafka-compatible broker whose every
// decision is taken by a deterministic core (core/broker), driven here by the
// real disk (diskshim) and network (netshim).
//
// With no flags it is a one-node broker on 127.0.0.1:9092 with its data in
// ./weir-data. Configuration uses Apache Kafka's key names, from a
// server.properties file (--config) and --override key=value flags, with a
// few flags for the keys set most often.
package main

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/weirmq/weir/core/broker"
	"github.com/weirmq/weir/core/config"
	"github.com/weirmq/weir/core/port"
	"github.com/weirmq/weir/core/record"
	"github.com/weirmq/weir/diskshim"
	"github.com/weirmq/weir/netshim"
)

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "weir:", err)
		os.Exit(1)
	}
}

// defaultGCPercent is the collector's target (GOGC) unless the environment
// sets one. Produce allocates a buffer per request frame, hundreds of MB/s
// under load, against a live heap of tens of MiB: at Go's default of 100
// the collector runs several times a second and its assists and pauses
// land on produce latency (weir-bench: +20% produce throughput at 400, peak
// RSS 35 -> 70 MiB). GOMEMLIMIT still caps the heap for those who set it.
const defaultGCPercent = 400

// overrides collects repeated --override key=value flags.
type overrides map[string]string

func (o overrides) String() string { return "" }

func (o overrides) Set(kv string) error {
	k, v, ok := strings.Cut(kv, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want key=value, got %q", kv)
	}
	o[strings.TrimSpace(k)] = v
	return nil
}

func run(args []string) error {
	fs := flag.NewFlagSet("weir", flag.ContinueOnError)
	configFile := fs.String("config", "", "a server.properties file with Kafka's config keys")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	cpuProfile := fs.String("cpu-profile", "", "write a Go CPU profile of the whole run to this file (for go tool pprof)")
	set := overrides{}
	fs.Var(set, "override", "a config key=value, over the file (repeatable)")
	// Shorthands for the keys set most often; each is the Kafka key with
	// dashes for dots.
	for _, key := range []string{"listeners", "advertised.listeners", "log.dirs", "node.id",
		"process.roles", "controller.quorum.voters", "controller.listener.names"} {
		fs.Func(strings.ReplaceAll(key, ".", "-"), "sets "+key, func(v string) error { set[key] = v; return nil })
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	values := map[string]string{}
	if *configFile != "" {
		text, err := os.ReadFile(*configFile)
		if err != nil {
			return err
		}
		props, warnings, err := config.ParseProperties(string(text))
		if err != nil {
			return fmt.Errorf("%s: %w", *configFile, err)
		}
		for _, w := range warnings {
			logger.Warn(w, "file", *configFile)
		}
		values = props
	}
	for k, v := range set {
		values[k] = v
	}
	cfg, unknown, err := config.NewBroker(values)
	if err != nil {
		return err
	}
	for _, k := range unknown {
		logger.Warn("unknown config key ignored", "key", k)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	return serve(cfg, logger)
}

func serve(cfg *config.Broker, logger *slog.Logger) error {
	if len(cfg.LogDirs) != 1 {
		return fmt.Errorf("log.dirs: Weir serves one log directory for now, got %d", len(cfg.LogDirs))
	}
	if cfg.MetadataLogDir != cfg.LogDirs[0] {
		return fmt.Errorf("metadata.log.dir: the metadata log lives in the log directory (%s) for now, got %s", cfg.LogDirs[0], cfg.MetadataLogDir)
	}
	var listen []string
	var peers *netshim.PeerConfig
	for _, l := range cfg.Listeners {
		if l.SecurityProtocol != "PLAINTEXT" {
			return fmt.Errorf("listeners: %s uses %s; only PLAINTEXT is served so far", l.Name, l.SecurityProtocol)
		}
		addr := l.String()[len(l.Name)+3:] // NAME://host:port
		if slices.Contains(cfg.ControllerListenerNames, l.Name) {
			// The controller listener carries the cluster's own traffic
			// (Raft, broker-to-controller calls), not Kafka clients'.
			if peers == nil {
				peers = &netshim.PeerConfig{Listen: addr}
			}
			continue
		}
		listen = append(listen, addr)
	}
	if len(cfg.ControllerQuorumVoters) > 0 {
		if peers == nil {
			peers = &netshim.PeerConfig{}
		}
		peers.Self = port.NodeID(cfg.NodeID)
		peers.Addrs = map[port.NodeID]string{}
		for _, v := range cfg.ControllerQuorumVoters {
			peers.Addrs[port.NodeID(v.ID)] = net.JoinHostPort(v.Host, strconv.Itoa(v.Port))
		}
	} else {
		peers = nil // a lone node has no peers
	}
	disk, err := diskshim.New(cfg.LogDirs[0], 8, logger)
	if err != nil {
		return err
	}
	defer disk.Close()
	srv, err := netshim.Listen(netshim.Config{
		Listen:          listen,
		MaxRequestBytes: cfg.SocketRequestMaxBytes,
		Supported:       broker.Supported,
		Precheck: func(r *port.Request) {
			broker.Precheck(r, record.DecompressLimit(cfg.MessageMaxBytes))
		},
		Logger:          logger,
		ShutdownTimeout: 10 * time.Second,
		Peers:           peers,
	})
	if err != nil {
		return err
	}
	advertiseBoundPorts(cfg, srv)
	node, err := broker.Boot(disk.BootFS(), cfg, randomSeed(), port.Time{WallMs: time.Now().UnixMilli()}, logger)
	if err != nil {
		return fmt.Errorf("recovery of %s failed: %w", cfg.LogDirs[0], err)
	}
	for _, a := range srv.Addrs() {
		logger.Info("listening", "addr", a.String(), "data", cfg.LogDirs[0], "node_id", cfg.NodeID)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// After the first signal starts a graceful shutdown, a second one gets
	// the default behaviour and ends the process, even if shutdown is stuck
	// waiting for a disk that no longer answers.
	go func() {
		<-ctx.Done()
		stop()
	}()
	if err := srv.Serve(ctx, node, disk); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	logger.Info("stopped")
	return nil
}

// advertiseBoundPorts completes advertised listeners as Kafka does: port 0
// (ephemeral) becomes the port actually bound, and an empty host becomes
// this machine's host name.
func advertiseBoundPorts(cfg *config.Broker, srv *netshim.Server) {
	addrs := srv.Addrs()
	for i := range cfg.AdvertisedListeners {
		a := &cfg.AdvertisedListeners[i]
		if tcp, ok := addrs[min(i, len(addrs)-1)].(*net.TCPAddr); ok && a.Port == 0 {
			a.Port = tcp.Port
		}
		if a.Host == "" {
			a.Host, _ = os.Hostname()
		}
	}
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic(err)
	}
	return binary.LittleEndian.Uint64(b[:])
}
