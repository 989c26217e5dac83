package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
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

	// abandoned is set when the test no longer uses the process, so an
	// exit before the test ends is expected.
	abandoned bool
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

// stop stops the process when the test ends. A process that exited before
// it was stopped fails the test, unless it was abandoned.
func (p *process) stop(t *testing.T) {
	if p.abandoned {
		return
	}
	if p.exited() {
		t.Errorf("%s exited before the test ended: %v", p.name, p.err)
		return
	}
	p.terminate()
}

// abandon stops the process if it is still running and marks it abandoned,
// for a process that failed to start.
func (p *process) abandon() {
	p.abandoned = true
	if !p.exited() {
		p.terminate()
	}
}

// terminate sends SIGTERM to the process group, then SIGKILL if the process
// is still running after stopDeadline, and waits for it to exit.
func (p *process) terminate() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopDeadline):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
}

// errExited is returned by waitReady when the process exits before it is
// ready.
var errExited = errors.New("exited at start-up")

// waitReady polls ready until it returns true. It returns an error wrapping
// errExited if the process exits first, and another error if ready is still
// false after startDeadline.
func (p *process) waitReady(what string, ready func() bool) error {
	deadline := time.Now().Add(startDeadline)
	for time.Now().Before(deadline) {
		if p.exited() {
			return fmt.Errorf("%s %w before %s: %v", p.name, errExited, what, p.err)
		}
		if ready() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not %s within %v", p.name, what, startDeadline)
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for a child process to listen on. Another listener may take the port
// before the child binds it, so a caller must detect that and try again, as
// startEmulator does.
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

// emulatorAttempts is how many times startEmulator starts the emulator on
// new ports when a port it was given has been taken in the meantime.
const emulatorAttempts = 5

// emulator is the Lambda Runtime Interface Emulator running one handler
// binary.
type emulator struct {
	*process
	// URL is the invocations URL.
	URL string
}

// startEmulator runs handler under the emulator, which listens on two free
// loopback ports, one for invocations and one for the Runtime API, and on
// nothing else. The emulator passes its whole environment, env, to the
// handler, and starts the handler at the first invocation. env replaces the
// test's environment: with AWS_LAMBDA_MAX_CONCURRENCY set the emulator would
// run in another mode.
func startEmulator(t *testing.T, handler string, env []string) *emulator {
	t.Helper()
	return startEmulatorOn(t, freeAddr, handler, env)
}

// startEmulatorOn is startEmulator with the addresses taken from pickAddr.
// When the emulator exits at start-up because an address is in use, it
// starts again on new addresses, up to emulatorAttempts times.
func startEmulatorOn(t *testing.T, pickAddr func(*testing.T) string, handler string, env []string) *emulator {
	t.Helper()
	for attempt := 1; ; attempt++ {
		e, err := tryEmulator(t, pickAddr(t), pickAddr(t), handler, env)
		if err == nil {
			return e
		}
		output := e.output.String()
		if !errors.Is(err, errExited) || !strings.Contains(output, "address already in use") {
			t.Fatalf("%v; output:\n%s", err, output)
		}
		if attempt == emulatorAttempts {
			t.Fatalf("%v on each of %d attempts with new ports; last output:\n%s", err, attempt, output)
		}
		t.Logf("%v; an address was in use, so starting it again on new ports", err)
	}
}

// tryEmulator starts the emulator on the two addresses and waits until both
// are served by it. On an error the process has exited, or has been
// stopped, and its cleanup reports nothing more.
func tryEmulator(t *testing.T, invokeAddr, runtimeAddr, handler string, env []string) (*emulator, error) {
	t.Helper()
	cmd := exec.Command(emulatorBinary,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		handler)
	cmd.Dir = emulatorDir(t)
	cmd.Env = env
	p := startProcess(t, "emulator", cmd)
	e := &emulator{process: p, URL: "http://" + invokeAddr + smtest.InvocationsPath}

	err := p.waitReady("listening on "+invokeAddr+" and "+runtimeAddr, func() bool {
		return servesInvocations(invokeAddr) && servesRuntimeAPI(runtimeAddr)
	})
	if err != nil {
		p.abandon()
	}
	return e, err
}

// accepts reports whether addr accepts TCP connections.
func accepts(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	_ = conn.Close()
	return true
}

// servesInvocations reports whether an HTTP server serves addr: the
// emulator's invocation server returns Go's plain 404 for GET /, a path
// that, unlike the invocation path, does not start the handler. A bare
// connection would not do, because a listener that took the port first
// accepts it while the emulator exits.
func servesInvocations(addr string) bool {
	return getReturns("http://"+addr+"/", http.StatusNotFound, "404 page not found")
}

// servesRuntimeAPI reports whether the emulator's Runtime API serves addr:
// its ping returns "pong". A bare connection would not show that the port
// is the emulator's rather than another listener's that took it first.
func servesRuntimeAPI(addr string) bool {
	return getReturns("http://"+addr+"/2018-06-01/ping", http.StatusOK, "pong")
}

// getReturns reports whether a GET of url returns status and, but for
// surrounding space, body within a second.
func getReturns(url string, status int, body string) bool {
	client := http.Client{Timeout: time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return err == nil && resp.StatusCode == status && strings.TrimSpace(string(data)) == body
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
