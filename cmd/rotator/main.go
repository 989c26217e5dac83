// Command rotator rotates the API keys that applications use to call AI
// providers, proving each new key against the provider before promoting it.
//
// It runs two ways. When AWS_LAMBDA_RUNTIME_API is set it is the Secrets
// Manager rotation Lambda, configured by environment variables alone.
// Otherwise it is the operator CLI: add, update, stage, rotate-now,
// abandon, status, client, serve and dev, documented by `rotator help`.
//
// Exit codes: 0 success (a rotation promoted), 1 error, 2 usage error,
// 3 rejected by the provider, 4 transient failure (retry later),
// 5 rotation in progress, 130 interrupted by Ctrl-C (128 plus the signal
// number, so 143 for SIGTERM).
package main

import (
	"context"
	"os"
)

func main() {
	if os.Getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		startLambda()
		return
	}
	ctx, stop := signals.NotifyContext(context.Background())
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
