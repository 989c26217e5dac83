package main

import (
	"context"
	"errors"
	"io"

	"github.com/keyturn/keyturn/internal/cli"
)

// errInterrupted ends a run that a signal stopped before the requests in
// flight finished; the log lines say what was cut short.
var errInterrupted = errors.New("interrupted")

// signals cancels the run's context on SIGINT, SIGTERM or SIGHUP. A second
// signal exits the process at once, cutting the requests still in flight.
var signals = cli.SignalWatcher{Prog: "router", Again: "exiting now, cutting the requests in flight"}

// exitCode prints err, if any, as `router: error:` and `router: hint:`
// lines, and returns its exit code.
func exitCode(ctx context.Context, err error, stderr io.Writer) int {
	if errors.Is(err, errInterrupted) {
		return cli.InterruptedCode(ctx)
	}
	return cli.Report("router", err, stderr)
}
