package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReport(t *testing.T) {
	inner := Usagef("bad flag %q", "--x").WithHint("run 'prog --help'")
	tests := []struct {
		name string
		err  error
		code int
		want string
	}{
		{"nil", nil, ExitOK, ""},
		{"help", fmt.Errorf("parse: %w", flag.ErrHelp), ExitOK, ""},
		{"plain", errors.New("boom"), ExitError, "prog: error: boom\n"},
		{"coded", WithCode(7, errors.New("busy")), 7, "prog: error: busy\n"},
		// The line is the *Error's own message, not what wraps it.
		{"wrapped", fmt.Errorf("outer: %w", inner), ExitUsage, "prog: error: bad flag \"--x\"\nprog: hint: run 'prog --help'\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := Report("prog", tt.err, &stderr); code != tt.code {
				t.Errorf("code %d, want %d", code, tt.code)
			}
			if stderr.String() != tt.want {
				t.Errorf("stderr = %q, want %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestWithCodeKeepsExisting(t *testing.T) {
	inner := Errorf("x").WithHint("h")
	if got := WithCode(ExitUsage, fmt.Errorf("wrap: %w", inner)); got != inner {
		t.Errorf("WithCode returned %v, want the *Error in the chain", got)
	}
	if got := WithCode(4, errors.New("y")); got.Code != 4 {
		t.Errorf("code %d, want 4", got.Code)
	}
}

func TestInterruptedCodeBySignal(t *testing.T) {
	for _, tt := range []struct {
		cause error
		want  int
	}{
		{SignalCause{Signal: syscall.SIGINT}, 130},
		{SignalCause{Signal: syscall.SIGTERM}, 143},
		{nil, ExitInterrupted},
	} {
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(tt.cause)
		if got := InterruptedCode(ctx); got != tt.want {
			t.Errorf("cause %v: code %d, want %d", tt.cause, got, tt.want)
		}
	}
}

func TestWatchSecondSignal(t *testing.T) {
	ch := make(chan os.Signal, 2)
	stopped := make(chan struct{})
	defer close(stopped)
	ctx, cancel := context.WithCancelCause(context.Background())
	var stderr bytes.Buffer
	exited := make(chan int, 1)
	w := SignalWatcher{Prog: "prog", Again: "exiting now", Stderr: &stderr, Exit: func(code int) { exited <- code }}
	go w.Watch(ch, stopped, cancel)

	ch <- syscall.SIGTERM
	<-ctx.Done()
	if got := InterruptedCode(ctx); got != 143 {
		t.Errorf("after the first SIGTERM: code %d, want 143", got)
	}
	ch <- os.Interrupt
	if code := <-exited; code != 130 {
		t.Errorf("second signal: exit %d, want 130", code)
	}
	if want := "prog: interrupt received again: exiting now\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
}

func TestSignalCauseNames(t *testing.T) {
	for sig, want := range map[syscall.Signal]string{
		syscall.SIGINT: "interrupt", syscall.SIGTERM: "SIGTERM", syscall.SIGHUP: "SIGHUP",
	} {
		if got := (SignalCause{Signal: sig}).Error(); got != want {
			t.Errorf("SignalCause{%d} = %q, want %q", sig, got, want)
		}
	}
}

func TestNotifyContextStopsOnSIGHUP(t *testing.T) {
	ctx, stop := SignalWatcher{Prog: "prog", Again: "exiting now", Exit: func(int) {}}.NotifyContext(context.Background())
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("SIGHUP did not cancel the context")
	}
	if got := context.Cause(ctx).Error(); got != "SIGHUP" {
		t.Errorf("cause %q, want SIGHUP", got)
	}
	if got := InterruptedCode(ctx); got != 129 {
		t.Errorf("code %d, want 129", got)
	}
}

func TestReplaceDurations(t *testing.T) {
	var buf bytes.Buffer
	logger := NewLogger(&buf, slog.LevelInfo)
	logger.Info("done", "duration", 1920*time.Microsecond, "count", 3)
	line := buf.String()
	for _, want := range []string{`"duration":"1.92ms"`, `"count":3`} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %s does not contain %s", line, want)
		}
	}
}
