package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/internal/storeurl"
)

const serveUsage = `
Usage: rotator serve [--once] [flags]

Runs the rotation schedule of every managed secret on the file store, as
Secrets Manager does on AWS. It re-reads the secrets on every pass, so new
secrets and changed schedules are picked up, and computes each next rotation
from the secret's last rotation, which is stored. A secret whose rotation
fails is retried with backoff (1 minute, doubling up to 1 hour) without
holding up the others. One log line per rotation outcome goes to stderr.

A secret that cannot be read is logged and skipped, and the others are
rotated. With --once, serve exits 1 if any secret could not be read or any
rotation failed.

One serve (or dev) runs on a store at a time: it holds the lock file
serve.lock in the store directory, and a second one exits with an error.
Every operator command (add, update, stage, rotate-now, abandon and
status) works while it runs.

Ctrl-C or SIGTERM stops it, with exit code 0; a rotation in flight gets
--stop-timeout to end. A second Ctrl-C exits at once: a rotation it cuts
short stays in progress, and the next rotation of that secret resumes it.
It runs on the file store only: on AWS, Secrets Manager runs the
schedules.

A rotation that fails is logged with its class: "config" for a setting to
fix, such as a keyturn:base-url that is not the provider's API root (fix it
with 'rotator update SECRET --base-url URL'), "transient" for an outage.
Both are retried with the backoff above.

Example:
  rotator serve --store file:///var/lib/keyturn/store
  rotator serve --once    # rotate what is due now, then exit (for cron jobs)
`

type serveFlags struct {
	storeFlags
	once        bool
	rescan      time.Duration
	stopTimeout time.Duration
}

func (a *app) serve(ctx context.Context, args []string) error {
	var f serveFlags
	fs := a.newFlagSet("serve", serveUsage)
	f.registerStore(fs, fileStoreHelp)
	f.registerHostPolicy(fs)
	fs.BoolVar(&f.once, "once", false, "rotate the secrets that are due now, wait for them, and exit; exit code 1 if a secret could not be read or a rotation failed")
	fs.DurationVar(&f.rescan, "rescan", scheduler.DefaultRescan, "longest wait between two reads of the store, as a Go `DURATION`")
	fs.DurationVar(&f.stopTimeout, "stop-timeout", scheduler.DefaultStopTimeout, "how long a rotation in flight may take to end after Ctrl-C or SIGTERM, as a Go `DURATION`")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return cli.Usagef("serve: unexpected argument %q: serve takes no SECRET, it runs every managed secret", positional[0])
	}
	if err := positiveDurations("serve",
		namedDuration{"rescan", f.rescan, "1m"}, namedDuration{"stop-timeout", f.stopTimeout, "30s"}); err != nil {
		return err
	}
	return a.runServe(ctx, &f)
}

func (a *app) runServe(ctx context.Context, f *serveFlags) error {
	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	if s.store.Kind == storeurl.AWS {
		return cli.WithCode(exitError, fmt.Errorf("serve: store %s is on AWS, where Secrets Manager runs the rotation schedules", s.store.Raw)).
			WithHint("use serve with a file store; on AWS, 'rotator rotate-now' starts a rotation at once")
	}
	store, closeStore, err := a.openStore(ctx, s, false)
	if err != nil {
		return err
	}
	defer closeStore()
	unlock, err := lockInstance(s.store.Dir)
	if err != nil {
		return err
	}
	defer unlock()

	logger := a.stderrLogger(slog.LevelInfo)
	engine, err := newEngine(store, s, a.getenv, logger)
	if err != nil {
		return err
	}
	engine.Now = a.clockNow
	sched := &scheduler.Scheduler{
		Store: store, Rotator: engine, Logger: logger, Clock: a.clock,
		Rescan: f.rescan, StopTimeout: f.stopTimeout,
	}

	if !f.once {
		logger.Info("serving rotation schedules", "store", s.store.Raw)
		return sched.Run(ctx)
	}
	failed, err := sched.RunOnce(ctx)
	return onceError(failed, err)
}

// onceError reports the end of `serve --once`: the secrets that could not
// be read, and the number of rotations that failed.
func onceError(failed int, err error) error {
	var listErr *scheduler.ListError
	if err != nil && !errors.As(err, &listErr) {
		return err
	}
	var problems []string
	if listErr != nil {
		problems = append(problems, listErr.Error())
	}
	if failed > 0 {
		problems = append(problems, plural(failed, "rotation")+" failed")
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("serve: %s; the log lines above say why", strings.Join(problems, "; "))
}
