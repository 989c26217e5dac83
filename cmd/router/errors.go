package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, documented in the package doc and the help text.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
	// exitInterrupted is 128+SIGINT, the shell's code for a command that
	// Ctrl-C stopped; SIGTERM gives 128+15 = 143 the same way.
	exitInterrupted = 130
)

// cliError is an error with an exit code and hints for the user.
type cliError struct {
	code  int
	err   error
	hints []string
}

func (e *cliError) Error() string { return e.err.Error() }
func (e *cliError) Unwrap() error { return e.err }

func (e *cliError) withHint(format string, args ...any) *cliError {
	e.hints = append(e.hints, fmt.Sprintf(format, args...))
	return e
}

func usageErrorf(format string, args ...any) *cliError {
	return &cliError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func errorf(format string, args ...any) *cliError {
	return &cliError{code: exitError, err: fmt.Errorf(format, args...)}
}

// errInterrupted ends a run that a signal stopped before the requests in
// flight finished; the log lines say what was cut short.
var errInterrupted = errors.New("interrupted")

// exitCode prints err, if any, as `router: error:` and `router: hint:`
// lines, and returns its exit code.
func exitCode(ctx context.Context, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errInterrupted):
		return interruptedCode(ctx)
	}
	ce := &cliError{code: exitError, err: err}
	errors.As(err, &ce)
	fmt.Fprintf(stderr, "router: error: %s\n", ce.err)
	for _, h := range ce.hints {
		fmt.Fprintf(stderr, "router: hint: %s\n", h)
	}
	return ce.code
}

// signalCause is the cause of a context that a signal cancelled.
type signalCause struct{ sig syscall.Signal }

func (c signalCause) Error() string { return c.sig.String() + " signal received" }

// notifyContext returns a context that SIGINT or SIGTERM cancels with a
// signalCause. A second signal exits the process at once, cutting the
// requests still in flight.
func notifyContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	stopped := make(chan struct{})
	go func() {
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
			fmt.Fprintf(os.Stderr, "router: %s received again: exiting now, cutting the requests in flight\n", sig)
			os.Exit(128 + int(sig))
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(stopped)
		cancel(nil)
	}
}

// interruptedCode is 128 plus the number of the signal that cancelled ctx,
// or 130 when a plain cancel did, as tests do.
func interruptedCode(ctx context.Context) int {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) {
		return 128 + int(sc.sig)
	}
	return exitInterrupted
}
