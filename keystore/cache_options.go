package keystore

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// normalizeCacheOptions fills in the defaults and checks the result.
func normalizeCacheOptions(o CacheOptions) (CacheOptions, error) {
	maxStaleDefaulted := o.MaxStale == 0
	if err := o.fillDurations(); err != nil {
		return o, err
	}
	if o.MaxStale < o.RefreshInterval {
		which := ""
		if maxStaleDefaulted {
			which = " (the default)"
		}
		return o, fmt.Errorf("invalid cache options: MaxStale %v%s is shorter than RefreshInterval %v: set MaxStale to at least %v",
			o.MaxStale, which, o.RefreshInterval, o.RefreshInterval)
	}
	if err := o.fillJitter(); err != nil {
		return o, err
	}

	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// fillDurations rejects negative durations and replaces zero ones with
// their defaults.
func (o *CacheOptions) fillDurations() error {
	durations := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"RefreshInterval", &o.RefreshInterval, DefaultRefreshInterval},
		{"MaxStale", &o.MaxStale, DefaultMaxStale},
		{"FetchTimeout", &o.FetchTimeout, DefaultFetchTimeout},
	}
	for _, d := range durations {
		if *d.value < 0 {
			return fmt.Errorf("invalid cache options: %s is %v: set a positive duration, or 0 for the default %v",
				d.name, *d.value, d.def)
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}
	return nil
}

// fillJitter checks Jitter and sets it to the fraction the cache uses.
func (o *CacheOptions) fillJitter() error {
	switch {
	case math.IsNaN(o.Jitter) || o.Jitter >= 1:
		return fmt.Errorf("invalid cache options: Jitter is %v: set a fraction of RefreshInterval below 1, 0 for the default %v, or a negative value for none",
			o.Jitter, DefaultRefreshJitter)
	case o.SyncPastExpiry:
		// Jitter spreads background refreshes, and with SyncPastExpiry
		// none runs: the refresh point is the soft expiry itself.
		o.Jitter = 0
	case o.Jitter == 0:
		o.Jitter = DefaultRefreshJitter
	case o.Jitter < 0:
		o.Jitter = 0
	}
	return nil
}
