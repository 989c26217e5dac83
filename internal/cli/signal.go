package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// SignalCause is the cause of a command context that a signal cancelled,
// so that a command can tell an interrupt from a timeout.
type SignalCause struct{ Signal syscall.Signal }

// Error names the signal as a user would: "interrupt" for Ctrl-C, and
// SIGTERM or SIGHUP by name, where syscall's own names read "terminated"
// and "hangup".
func (c SignalCause) Error() string { return SignalName(c.Signal) }

// SignalName returns "interrupt" for SIGINT, which Ctrl-C sends, and the
// SIG name of the other signals a command stops on.
func SignalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "interrupt"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return sig.String()
}

// InterruptedCode is the exit code of a command stopped by ctx's signal:
// 128 plus the signal number, or ExitInterrupted when a plain cancel
// stopped it, as tests do.
func InterruptedCode(ctx context.Context) int {
	var sc SignalCause
	if errors.As(context.Cause(ctx), &sc) {
		return 128 + int(sc.Signal)
	}
	return ExitInterrupted
}

// SignalWatcher turns SIGINT, SIGTERM and SIGHUP into the cancel of a
// command's context. SIGHUP counts as SIGTERM, a request to stop cleanly,
// because a terminal that closes sends it, and its default action would
// kill the command without letting it wind down. The first signal cancels it with a SignalCause; the second
// prints "PROG: SIGNAL received again: AGAIN" and exits at once with 128
// plus the signal number, for a user who will not wait for the command to
// wind down.
type SignalWatcher struct {
	// Prog is the command's name, which starts the message.
	Prog string
	// Again ends the message, saying what exiting at once cuts short.
	Again string
	// Stderr receives the message; nil is os.Stderr.
	Stderr io.Writer
	// Exit ends the process; nil is os.Exit.
	Exit func(code int)
}

// NotifyContext returns a context that the first SIGINT, SIGTERM or
// SIGHUP cancels, and a stop function that stops watching and cancels it.
func (w SignalWatcher) NotifyContext(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	stopped := make(chan struct{})
	go w.Watch(ch, stopped, cancel)
	return ctx, func() {
		signal.Stop(ch)
		close(stopped)
		cancel(nil)
	}
}

// Watch handles the signals from ch, as the type's doc says, until stopped
// is closed or it has called Exit.
func (w SignalWatcher) Watch(ch <-chan os.Signal, stopped <-chan struct{}, cancel context.CancelCauseFunc) {
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
			cancel(SignalCause{sig})
			continue
		}
		w.exit(sig)
		return
	}
}

func (w SignalWatcher) exit(sig syscall.Signal) {
	stderr, exit := w.Stderr, w.Exit
	if stderr == nil {
		stderr = os.Stderr
	}
	if exit == nil {
		exit = os.Exit
	}
	fmt.Fprintf(stderr, "%s: %s received again: %s\n", w.Prog, SignalName(sig), w.Again)
	exit(128 + int(sig))
}
