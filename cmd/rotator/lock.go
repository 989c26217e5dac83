package main

import (
	"fmt"
	"path/filepath"

	"github.com/gofrs/flock"

	"github.com/keyturn/keyturn/internal/cli"
)

// instanceLockName is the lock file that `rotator serve` and `rotator dev`
// hold in the store directory while they run.
const instanceLockName = "serve.lock"

// lockInstance takes the store's instance lock, so that one scheduler at a
// time runs on a store. Two would rotate the same secrets, and a second
// `rotator dev` would replace the management key registered at the first
// one's stand-in provider. The lock is an advisory flock(2) lock, which the
// kernel releases when the process exits, however it exits. The operator
// commands (add, stage, rotate-now, status, abandon) do not take it.
func lockInstance(dir string) (unlock func(), err error) {
	lock := flock.New(filepath.Join(dir, instanceLockName), flock.SetPermissions(0o600))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("lock store %s: %w", dir, err)
	}
	if !ok {
		return nil, cli.WithCode(exitError, fmt.Errorf("another rotator serve (or dev) is running on store %s", dir)).
			WithHint("stop it first, or use another store; every operator command (add, update, stage, rotate-now, abandon and status) works while it runs")
	}
	return func() { _ = lock.Unlock() }, nil
}
