package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// signalCause is the cause of a command context that a signal cancelled.
type signalCause struct{ sig syscall.Signal }

func (c signalCause) Error() string { return c.sig.String() + " signal received" }

// notifyContext returns a context that SIGINT or SIGTERM cancels with a
// signalCause, so that a command can tell an interrupt from a timeout and
// exit with 128 plus the signal number, as shells do. A second signal
// exits the process at once, for a serve that waits for its rotations.
func notifyContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	stopped := make(chan struct{})
	go watchSignals(ch, stopped, cancel, os.Stderr, os.Exit)
	return ctx, func() {
		signal.Stop(ch)
		close(stopped)
		cancel(nil)
	}
}

// watchSignals cancels the command with the first signal from ch and calls
// exit with the second, until stopped is closed. A rotation that the exit
// cuts short stays in progress: its AWSPENDING version is resumed by the
// next rotation of the secret, or dropped by 'rotator abandon'.
func watchSignals(ch <-chan os.Signal, stopped <-chan struct{}, cancel context.CancelCauseFunc, stderr io.Writer, exit func(int)) {
	for n := 0; ; n++ {
		var s os.Signal
		select {
		case s = <-ch:
		case <-stopped:
			return
		}
		sig, ok := s.(syscall.Signal)
		if !ok {
			sig = syscall.SIGINT
		}
		if n == 0 {
			cancel(signalCause{sig})
			continue
		}
		fmt.Fprintf(stderr, "rotator: %s received again: exiting now; a rotation in flight stays in progress "+
			"and the next rotation of its secret resumes it\n", sig)
		exit(128 + int(sig))
		return
	}
}

// interrupted reports whether ctx ended because the command was stopped
// rather than timed out: by a signal, or by a plain cancel as tests do.
func interrupted(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// interruptedCode is the exit code of a command stopped by ctx's signal:
// 128 plus the signal number, 130 for Ctrl-C.
func interruptedCode(ctx context.Context) int {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		return 128 + int(sc.sig)
	}
	return exitInterrupted
}

// interruptedError gives the error of a command that was interrupted the
// interrupt's exit code, and starts its message with "interrupted"
// unless it already does.
// Commands that stop cleanly on a signal, such as serve, return nil and
// keep exit code 0.
func interruptedError(ctx context.Context, err error) error {
	if err == nil || !interrupted(ctx) {
		return err
	}
	var silent errSilent
	if errors.As(err, &silent) {
		return errSilent{interruptedCode(ctx)}
	}
	ce := withCode(exitError, err)
	ce.code = interruptedCode(ctx)
	if !strings.HasPrefix(ce.err.Error(), "interrupted") {
		ce.err = fmt.Errorf("interrupted: %w", ce.err)
	}
	return ce
}
