package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/loadgen"
	"github.com/keyturn/keyturn/keystore"
)

const (
	// settle is how long the load runs on after the router has switched,
	// so that requests that read the old key just before the switch
	// arrive at the stand-in and are counted.
	settle = time.Second
	// wait401 bounds the random wait before a 401-mode rotation. That
	// mode's switch does not wait for the refresh cycle, so a short wait
	// is enough to vary where in the load a rotation falls.
	wait401 = time.Second
	// switchTimeout401 bounds the wait for the switch in 401 mode, which
	// takes milliseconds.
	switchTimeout401 = 30 * time.Second
	// progressEvery spaces the progress lines of long waits.
	progressEvery = 30 * time.Second
	// pollEvery spaces the checks of the cache for the new version.
	pollEvery = 5 * time.Millisecond
)

// errSwitchTimeout reports a router that kept serving the old version.
var errSwitchTimeout = errors.New("the router did not switch to the new version in time")

// sample is one measured rotation.
type sample struct {
	mode      mode
	index     int
	versionID string
	// wait is the random wait before the rotation.
	wait time.Duration
	// finish is when finishSecret's move of AWSCURRENT returned.
	finish time.Time
	// sinceRead is the time from the cache's last read of the secret to
	// finish: where in the refresh cycle the rotation fell.
	sinceRead time.Duration
	lagResult
	// retriedLatencies and otherLatencies are the client-side latencies of
	// the requests the router retried after a 401 and of the others.
	retriedLatencies, otherLatencies []time.Duration
	requests                         int
	// failed counts the failed client requests, and failures lists them.
	failed   int
	failures string
}

// measureMode measures cfg.rotations rotations in mode m, printing a line
// for each. On error it returns the samples measured so far.
func (w *world) measureMode(ctx context.Context, m mode, stdout io.Writer) ([]sample, error) {
	var samples []sample
	for i := 1; i <= w.cfg.rotations; i++ {
		s, err := w.measureRotation(ctx, m, i, stdout)
		if err != nil {
			return samples, fmt.Errorf("%s mode, rotation %d: %w", m, i, err)
		}
		samples = append(samples, s)
		printSample(stdout, w.cfg, s)
	}
	return samples, nil
}

// measureRotation runs the load, waits a random time, rotates, waits for
// the router to switch to the new version, and then measures the lag from
// the stand-in's records of the load's requests.
func (w *world) measureRotation(ctx context.Context, m mode, i int, stdout io.Writer) (sample, error) {
	s := sample{mode: m, index: i, wait: w.randomWait(m)}
	// Every request of earlier rotations ended before their load stopped,
	// so the records from here on are this rotation's.
	seen := len(w.standIn.Requests())
	gen, err := loadgen.Start(loadgen.Options{
		URL: w.routerURL, Key: w.clientKey, Model: publicModel, Rate: w.cfg.rate, StreamEvery: 2,
	})
	if err != nil {
		return s, err
	}
	old, err := w.rotateUnderLoad(ctx, &s, stdout)
	// Stop waits for the requests in flight, and the stand-in records a
	// request before the router's response to it ends.
	report := gen.Stop()
	s.requests = report.Sent()
	s.failed = len(report.Failed())
	s.failures = report.FailureList(20)
	if err != nil && s.failed > 0 {
		return s, fmt.Errorf("%w; %d client requests failed too:\n%s", err, s.failed, strings.TrimSuffix(s.failures, "\n"))
	}
	if err != nil {
		return s, err
	}

	s.lagResult = measureLag(w.standIn.Requests()[seen:], old, s.finish)
	s.retriedLatencies, s.otherLatencies = splitLatencies(report.Results, s.retried)
	return s, nil
}

// rotateUnderLoad is the part of measureRotation while the load runs. It
// returns the key that the rotation replaced.
func (w *world) rotateUnderLoad(ctx context.Context, s *sample, stdout io.Writer) (keystore.Secret, error) {
	if s.mode == modeDefault {
		fmt.Fprintf(stdout, "  rotation %d/%d (%s): waiting %s, a random point in the refresh cycle, before rotating\n",
			s.index, w.cfg.rotations, s.mode, formatDuration(s.wait))
	}
	if err := sleep(ctx, s.wait); err != nil {
		return keystore.Secret{}, err
	}
	old, err := w.promote(ctx, s)
	if err != nil {
		return keystore.Secret{}, err
	}
	if err := w.waitSwitch(ctx, s, stdout); err != nil {
		return keystore.Secret{}, err
	}
	return old, sleep(ctx, settle)
}

// promote rotates to a new key and records the finishSecret instant and
// the cache's phase then. In 401 mode it revokes the old key at the
// stand-in as soon as the new version is AWSCURRENT.
func (w *world) promote(ctx context.Context, s *sample) (keystore.Secret, error) {
	old := w.currentKey
	var lastRead time.Time
	w.watch.expect(func() {
		if st, ok := w.cache.Status(providerSecret); ok {
			lastRead = st.Fetched
		}
		if s.mode == mode401 {
			w.standIn.RevokeKey(old.Reveal())
		}
	})
	version, err := w.rotate(ctx)
	w.watch.expect(nil)
	if err != nil {
		return keystore.Secret{}, err
	}
	p, ok := w.watch.promotionOf(version)
	if !ok {
		return keystore.Secret{}, fmt.Errorf("the store recorded no move of %s to version %s", keystore.StageCurrent, version)
	}
	s.versionID, s.finish, s.sinceRead = version, p.at, p.at.Sub(lastRead)
	return old, nil
}

// waitSwitch waits until the router's cache serves the new version. In
// default mode that is the next background refresh, at most one refresh
// interval away, and it prints a progress line every progressEvery.
func (w *world) waitSwitch(ctx context.Context, s *sample, stdout io.Writer) error {
	timeout := switchTimeout401
	if s.mode == modeDefault {
		timeout = w.cfg.refreshInterval() + switchTimeout401
	}
	deadline := s.finish.Add(timeout)
	nextProgress := time.Now().Add(progressEvery)
	for {
		st, _ := w.cache.Status(providerSecret)
		if st.CurrentVersion == s.versionID {
			return nil
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("%w: %s after finishSecret the cache still serves version %s, not %s",
				errSwitchTimeout, formatDuration(timeout), st.CurrentVersion, s.versionID)
		}
		if s.mode == modeDefault && now.After(nextProgress) {
			fmt.Fprintf(stdout, "  rotation %d/%d (%s): waiting for the router's background refresh, %s after finishSecret; due by %s\n",
				s.index, w.cfg.rotations, s.mode, formatDuration(now.Sub(s.finish)),
				st.Fetched.Add(w.cfg.refreshInterval()).Format("15:04:05"))
			nextProgress = now.Add(progressEvery)
		}
		if err := sleep(ctx, pollEvery); err != nil {
			return err
		}
	}
}

// randomWait returns the wait before a rotation. In default mode it is
// uniform over one refresh interval, so the rotations sample every point
// of the refresh cycle alike.
func (w *world) randomWait(m mode) time.Duration {
	if m == modeDefault {
		return rand.N(w.cfg.refreshInterval())
	}
	return rand.N(wait401)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
