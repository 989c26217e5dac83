// Command visibility measures the visibility lag of a key rotation: how long
// after finishSecret moves AWSCURRENT to the new key the router stops
// sending the old key upstream.
//
// It builds keyturn in process from its real parts. The stand-in provider
// and the router listen on 127.0.0.1, a file store lives in a temporary
// directory, and the rotation engine promotes staged keys. The load
// generator (internal/loadgen) sends chat requests through the router. It
// measures two modes in one run, so that their figures compare:
//
//   - default: the old key stays valid at the provider, as during a grace
//     period, so the router switches at its next background refresh;
//   - 401: the old key is revoked at finishSecret, so the router switches
//     when the provider's 401 forces it to re-read the secret.
//
// Every client request must succeed. The exit code is 0 when all did, 1
// when a request failed or the measurement could not run, and 2 for invalid
// flags. docs/BENCHMARKS.md records its results.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is an invalid command line, which exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitCode prints err to stderr and returns the exit code for it.
func exitCode(err error, stderr io.Writer) int {
	var usage *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "visibility: %v\nRun 'visibility -h' for the flags.\n", err)
		return 2
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(stderr, "visibility: interrupted before the measurement finished\n")
		return 1
	}
	fmt.Fprintf(stderr, "visibility: error: %v\n", err)
	return 1
}

// run parses args, measures the modes they select and prints the results
// to stdout. It returns an error when a client request failed, after the
// results.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	w, err := newWorld(ctx, cfg, newLogger(stderr))
	if err != nil {
		return err
	}
	defer w.close()

	printHeader(stdout, cfg)
	results := map[mode][]sample{}
	for _, m := range cfg.modes {
		samples, err := w.measureMode(ctx, m, stdout)
		results[m] = samples
		if err != nil {
			printSummary(stdout, cfg, results)
			return err
		}
	}
	printSummary(stdout, cfg, results)
	return checkFailures(results)
}
