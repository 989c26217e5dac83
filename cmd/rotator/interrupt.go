package main

import (
	"context"
	"errors"
	"fmt"
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
// exit with 128 plus the signal number, as shells do.
func notifyContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			if sig, ok := s.(syscall.Signal); ok {
				cancel(signalCause{sig})
				return
			}
			cancel(signalCause{syscall.SIGINT})
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		cancel(nil)
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
