package main

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/loadgen"
	"github.com/keyturn/keyturn/keystore"
)

// lagResult is the measurement of one rotation from the stand-in's request
// records.
type lagResult struct {
	// lag runs from finishSecret to the arrival of the last upstream
	// request that carried the old key. It is zero when no request with
	// the old key arrived after finishSecret.
	lag time.Duration
	// oldKeyRequests counts the upstream requests with the old key after
	// finishSecret, rejected ones included.
	oldKeyRequests int
	// rejected counts the old-key requests that the stand-in rejected with 401.
	rejected int
	// retried holds the load generator's sequence numbers of the client
	// requests whose old key was rejected, which the router retried.
	retried map[int]bool
}

// measureLag reads the lag of a rotation that promoted a new key at finish
// from the stand-in's records of the router's chat requests. A request
// counts as after finishSecret when it arrived at or after finish, or when
// the stand-in rejected its key: the key is revoked only after finish, and
// a request that arrived just before may still be checked after it.
func measureLag(records []fakeprovider.RequestRecord, old keystore.Secret, finish time.Time) lagResult {
	res := lagResult{retried: map[int]bool{}}
	for _, r := range records {
		if r.Path != chatPath || !r.Key.Equal(old) {
			continue
		}
		rejected := r.Status == http.StatusUnauthorized
		if r.Time.Before(finish) && !rejected {
			continue
		}
		res.oldKeyRequests++
		res.lag = max(res.lag, r.Time.Sub(finish))
		if !rejected {
			continue
		}
		res.rejected++
		if seq, ok := loadgen.MessageSeq(r.Body); ok {
			res.retried[seq] = true
		}
	}
	return res
}

// splitLatencies returns the client-side latencies of the requests in
// retried and of the others.
func splitLatencies(results []loadgen.Result, retried map[int]bool) (retriedLatencies, others []time.Duration) {
	for _, r := range results {
		d := r.End.Sub(r.Start)
		if retried[r.Seq] {
			retriedLatencies = append(retriedLatencies, d)
		} else {
			others = append(others, d)
		}
	}
	return retriedLatencies, others
}

// quantile returns the q-quantile of values by nearest rank: the smallest
// value that at least a fraction q of the values do not exceed, so the
// median of an even count is the lower of the two middle values. It
// returns the zero value for no values.
func quantile[T cmp.Ordered](values []T, q float64) T {
	if len(values) == 0 {
		var zero T
		return zero
	}
	sorted := slices.Sorted(slices.Values(values))
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
