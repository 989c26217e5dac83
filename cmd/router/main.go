// Command router is keyturn's OpenAI-compatible router: it forwards client
// requests to AI providers with the current key of each provider secret,
// read from the keystore at run time through a cache, so a rotated key takes
// effect without a restart. `router --help` documents its flags, its
// environment and its config file.
//
// Exit codes: 0 stopped cleanly (also by Ctrl-C, SIGTERM or SIGHUP once
// the requests in flight have finished), 1 error, 2 usage error, 128 plus
// the signal number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP) when
// a signal stopped it before the requests in flight had finished.
//
// NOTE: the router runs only as a long-lived HTTP server. Running it as a
// Lambda function behind a Function URL, with the cache's SyncPastExpiry
// set, is not built yet.
package main

import (
	"context"
	"os"
)

func main() {
	ctx, stop := signals.NotifyContext(context.Background())
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(ctx, err, os.Stderr))
}
