package tests

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/smtest"
)

// Deadlines that only stop a hung test. None of them measures speed.
const (
	startDeadline = 30 * time.Second // for a process to start listening
	stopDeadline  = 10 * time.Second // for a process to exit after SIGTERM
	runDeadline   = 45 * time.Second // for a CLI run or a rotation to finish
)

// outputBuffer collects a process's stdout and stderr.
type outputBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is a child process in its own process group, with its output
// captured.
type process struct {
	name   string
	cmd    *exec.Cmd
	output *outputBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, set before done is closed
}

// startProcess starts cmd in a new process group and stops the group when
// the test ends.
func startProcess(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, output: &outputBuffer{}, done: make(chan struct{})}
	cmd.Stdout = p.output
	cmd.Stderr = p.output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, then SIGKILL if it is still
// running after stopDeadline. A process that exited before it was stopped
// fails the test.
func (p *process) stop(t *testing.T) {
	if p.exited() {
		t.Errorf("%s exited before the test ended: %v", p.name, p.err)
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopDeadline):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// waitListening waits until addr accepts TCP connections, failing the test
// if the process exits first.
func (p *process) waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(startDeadline)
	for time.Now().Before(deadline) {
		if p.exited() {
			t.Fatalf("%s exited before listening on %s: %v; output:\n%s", p.name, addr, p.err, p.output)
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not listen on %s within %v", p.name, addr, startDeadline)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a child process to listen on.
//
// NOTE: another listener may take the port before the child binds it. The
// emulator then exits at start-up and the test fails with its output; it is
// not retried.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("release port %s: %v", addr, err)
	}
	return addr
}

// emulator is the Lambda Runtime Interface Emulator running one handler
// binary.
type emulator struct {
	*process
	// URL is the invocations URL.
	URL string
}

// startEmulator runs handler under the emulator, which listens on addr for
// invocations and on another free loopback port for the Runtime API, and on
// nothing else. The emulator passes its whole environment, env, to the
// handler, and starts the handler at the first invocation. env replaces the
// test's environment: with AWS_LAMBDA_MAX_CONCURRENCY set the emulator would
// run in another mode.
func startEmulator(t *testing.T, addr, handler string, env []string) *emulator {
	t.Helper()
	cmd := exec.Command(emulatorBinary,
		"--runtime-interface-emulator-address", addr,
		"--runtime-api-address", freeAddr(t),
		handler)
	cmd.Dir = emulatorDir(t)
	cmd.Env = env
	p := startProcess(t, "emulator", cmd)
	p.waitListening(t, addr)
	return &emulator{process: p, URL: "http://" + addr + smtest.InvocationsPath}
}

// emulatorDir makes the emulator's working directory. It is not under
// t.TempDir: the emulator resolves a JSON schema against its working
// directory as a file URL at start-up and panics when the path contains a "#",
// as subtest directories can.
func emulatorDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "keyturn-emulator-")
	if err != nil {
		t.Fatalf("create emulator directory: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// runResult is the outcome of a CLI run.
type runResult struct {
	code   int
	stdout string
	stderr string
}

// runCommand runs a binary to completion and returns its exit code and
// output. A run that does not end within runDeadline fails the test.
func runCommand(t *testing.T, env []string, binary string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runDeadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	err := cmd.Run()
	res := runResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %v did not finish within %v", binary, args, runDeadline)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s %v: %v", binary, args, err)
	}
	return res
}
