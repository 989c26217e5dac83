package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/internal/cli"
)

// signals cancels a command's context on SIGINT or SIGTERM with a
// cli.SignalCause, so that a command can tell an interrupt from a timeout
// and exit with 128 plus the signal number, as shells do. A second signal
// exits the process at once, for a serve that waits for its rotations. A
// rotation that the exit cuts short stays in progress: its AWSPENDING
// version is resumed by the next rotation of the secret, or dropped by
// 'rotator abandon'.
var signals = cli.SignalWatcher{
	Prog: "rotator",
	Again: "exiting now; a rotation in flight stays in progress " +
		"and the next rotation of its secret resumes it",
}

// interrupted reports whether ctx ended because the command was stopped
// rather than timed out: by a signal, or by a plain cancel as tests do.
func interrupted(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
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
		return errSilent{cli.InterruptedCode(ctx)}
	}
	ce := cli.WithCode(exitError, err)
	ce.Code = cli.InterruptedCode(ctx)
	if !strings.HasPrefix(ce.Err.Error(), "interrupted") {
		ce.Err = fmt.Errorf("interrupted: %w", ce.Err)
	}
	return ce
}
