package router

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyturn/keyturn/internal/clientkeys"
)

// clientLimits applies each client's rate limit and monthly quota. Both
// are counted by this router instance alone, so N instances behind a load
// balancer allow up to N times the configured rate and quota.
type clientLimits struct {
	now func() time.Time

	mu      sync.Mutex
	clients map[string]*clientState // by client id
}

type clientState struct {
	limiter *rate.Limiter // nil when the client has no rps
	month   string        // the calendar month (UTC) that used counts
	used    int64
}

func newClientLimits(now func() time.Time) *clientLimits {
	return &clientLimits{now: now, clients: map[string]*clientState{}}
}

// allow takes one request from c's rate limit, or returns a 429 with how
// long to wait.
func (l *clientLimits) allow(c clientkeys.Client) *authError {
	if c.RPS <= 0 {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	lim := l.limiter(c, now)
	r := lim.ReserveN(now, 1)
	delay := r.DelayFrom(now)
	if !r.OK() || delay > 0 {
		r.CancelAt(now)
	}
	l.mu.Unlock()
	if r.OK() && delay == 0 {
		return nil
	}
	wait := max(1, int(math.Ceil(delay.Seconds())))
	return &authError{status: http.StatusTooManyRequests, code: "rate_limit_exceeded", retryAfter: wait,
		message: fmt.Sprintf("rate limit of client %s (%s) reached: %g requests per second, burst %d: retry after %d s",
			c.Name, c.ID, lim.Limit(), lim.Burst(), wait)}
}

// limiter returns c's limiter, following c's current rps and burst, which
// may change with each version of the clients secret. l.mu is held.
func (l *clientLimits) limiter(c clientkeys.Client, now time.Time) *rate.Limiter {
	burst := c.EffectiveBurst()
	st := l.stateLocked(c.ID)
	if st.limiter == nil {
		st.limiter = rate.NewLimiter(rate.Limit(c.RPS), burst)
		return st.limiter
	}
	if st.limiter.Limit() != rate.Limit(c.RPS) {
		st.limiter.SetLimitAt(now, rate.Limit(c.RPS))
	}
	if st.limiter.Burst() != burst {
		st.limiter.SetBurstAt(now, burst)
	}
	return st.limiter
}

func (l *clientLimits) stateLocked(id string) *clientState {
	st := l.clients[id]
	if st == nil {
		st = &clientState{}
		l.clients[id] = st
	}
	return st
}

// takeQuota counts one upstream request against c's monthly quota, or
// returns a 429 once the calendar month's quota (UTC) is used up. It
// returns the month it counted the request in, for refundQuota, or "" if
// c has no quota.
//
// NOTE: the quota counts requests, not tokens, in this router instance's
// memory: it restarts from zero when the router restarts.
func (l *clientLimits) takeQuota(c clientkeys.Client) (string, *authError) {
	if c.MonthlyQuota <= 0 {
		return "", nil
	}
	now := l.now().UTC()
	month := now.Format("2006-01")
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.stateLocked(c.ID)
	if st.month != month {
		st.month, st.used = month, 0
	}
	if st.used >= c.MonthlyQuota {
		next := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		return "", &authError{status: http.StatusTooManyRequests, code: "insufficient_quota",
			retryAfter: int(math.Ceil(next.Sub(now).Seconds())),
			message: fmt.Sprintf("client %s (%s) has used its monthly quota of %d requests for %s: it resets on %s UTC",
				c.Name, c.ID, c.MonthlyQuota, month, next.Format("2006-01-02"))}
	}
	st.used++
	return month, nil
}

// refundQuota gives back a request that takeQuota counted in month and
// that never reached the provider. A month that has ended since is left
// alone: its count no longer applies.
func (l *clientLimits) refundQuota(c clientkeys.Client, month string) {
	if month == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.clients[c.ID]; st != nil && st.month == month && st.used > 0 {
		st.used--
	}
}
