package rotation

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// mintedRetryWaits are the waits before each repeated check of a freshly
// minted key that got a 401. A provider may take a moment to accept a new
// key on all of its servers. A 401 that lasts past these few seconds
// rejects the key.
var mintedRetryWaits = []time.Duration{time.Second, 2 * time.Second}

// freshKeyWindow is how long after minting a 401 gets the repeated checks.
// An older pending key, such as one a later retry of the rotation tests, is
// rejected at its first 401.
const freshKeyWindow = 5 * time.Minute

// retryReserve is the time that must be left before the deadline after a
// wait for a repeated check to run: the checker's default CallTimeout (5s)
// and Margin (2s), with room to spare.
const retryReserve = 10 * time.Second

// checkPending checks the pending key v with the settings recorded in its
// version, which are the ones the router will use with it. A freshly minted
// key that gets a 401 is checked again after each of mintedRetryWaits,
// while the context's deadline leaves time for it.
func (c *call) checkPending(ctx context.Context, settings keystore.Settings, v keystore.Value) (provider.Result, error) {
	checkWith := v.Settings
	if checkWith.Provider == "" {
		checkWith = settings
	}
	res, err := c.check(ctx, v.APIKey, checkWith)
	if err != nil || !c.rejectedFresh(res, v) {
		return res, err
	}
	if _, minted, err := c.keySource(ctx, settings, v); err != nil || !minted {
		return res, err
	}

	attempts := res.Attempts
	for i, wait := range mintedRetryWaits {
		if !timeLeft(ctx, wait) {
			break
		}
		c.e.logger().LogAttrs(ctx, slog.LevelInfo, "freshly minted key got a 401; checking again",
			slog.String("secret_id", c.secretID), slog.String("version_id", c.token),
			slog.Int("recheck", i+1), slog.Duration("wait", wait))
		if !sleep(ctx, wait) {
			break
		}
		res, _ = c.check(ctx, v.APIKey, checkWith)
		attempts += res.Attempts
		if !c.rejectedFresh(res, v) {
			break
		}
	}
	res.Attempts = attempts
	return res, nil
}

// rejectedFresh reports whether res is a 401 for a key created less than
// freshKeyWindow ago.
func (c *call) rejectedFresh(res provider.Result, v keystore.Value) bool {
	return res.Class == provider.Rejected && res.Status == http.StatusUnauthorized &&
		!v.CreatedAt.IsZero() && c.e.now().Sub(v.CreatedAt) < freshKeyWindow
}

// timeLeft reports whether the context's deadline leaves time for a wait
// and one more check after it.
func timeLeft(ctx context.Context, wait time.Duration) bool {
	deadline, ok := ctx.Deadline()
	return !ok || time.Until(deadline) >= wait+retryReserve
}

// sleep waits for d, and reports false if the context ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
