package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// weirBinary is built once per test run by TestMain.
var weirBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-bin")
	if err != nil {
		panic(err)
	}
	weirBinary = filepath.Join(dir, "weir")
	out, err := exec.Command("go", "build", "-o", weirBinary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a weir process started by a test.
type process struct {
	t       *testing.T
	addr    string
	dataDir string
	cmd     *exec.Cmd
	log     *bytes.Buffer
}

// startBroker runs weir on a free loopback port with a fresh data directory
// (or dataDir, to restart on existing data) and waits until it accepts
// connections.
func startBroker(t *testing.T, dataDir string, extra ...string) *process {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	addr := freeAddr(t)
	b := &process{t: t, addr: addr, dataDir: dataDir, log: &bytes.Buffer{}}
	b.start(extra...)
	t.Cleanup(func() {
		if b.cmd.ProcessState == nil {
			b.cmd.Process.Kill()
			b.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("broker log:\n%s", b.log.String())
		}
	})
	return b
}

func (b *process) start(extra ...string) {
	b.t.Helper()
	args := append([]string{"--listeners", "PLAINTEXT://" + b.addr, "--log-dirs", b.dataDir}, extra...)
	b.cmd = exec.Command(weirBinary, args...)
	b.cmd.Stdout, b.cmd.Stderr = b.log, b.log
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", b.addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("broker did not listen on %s: %v\n%s", b.addr, err, b.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the process with SIGKILL, as a crash would.
func (b *process) kill() {
	b.cmd.Process.Kill()
	b.cmd.Wait()
}

// stop sends SIGTERM and returns the exit code.
func (b *process) stop() int {
	b.cmd.Process.Signal(syscall.SIGTERM)
	b.cmd.Wait()
	return b.cmd.ProcessState.ExitCode()
}

// restart starts the broker again on the same port and data.
func (b *process) restart() { b.start() }

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
