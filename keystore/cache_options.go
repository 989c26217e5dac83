package keystore

import (
	"fmt"
	"log/slog"
	"math"
	"time"
)

// normalizeCacheOptions fills in the defaults and checks the result.
func normalizeCacheOptions(o CacheOptions) (CacheOptions, error) {
	durations := []struct {
		name  string
		value *time.Duration
		def   time.Duration
	}{
		{"RefreshInterval", &o.RefreshInterval, DefaultRefreshInterval},
		{"MaxStale", &o.MaxStale, DefaultMaxStale},
		{"FetchTimeout", &o.FetchTimeout, DefaultFetchTimeout},
	}
	maxStaleDefaulted := o.MaxStale == 0
	for _, d := range durations {
		if *d.value < 0 {
			return o, fmt.Errorf("invalid cache options: %s is %v: set a positive duration, or 0 for the default %v",
				d.name, *d.value, d.def)
		}
		if *d.value == 0 {
			*d.value = d.def
		}
	}

	if o.MaxStale < o.RefreshInterval {
		which := ""
		if maxStaleDefaulted {
			which = " (the default)"
		}
		return o, fmt.Errorf("invalid cache options: MaxStale %v%s is shorter than RefreshInterval %v: set MaxStale to at least %v",
			o.MaxStale, which, o.RefreshInterval, o.RefreshInterval)
	}

	switch {
	case math.IsNaN(o.Jitter) || o.Jitter >= 1:
		return o, fmt.Errorf("invalid cache options: Jitter is %v: set a fraction of RefreshInterval below 1, 0 for the default %v, or a negative value for none",
			o.Jitter, DefaultRefreshJitter)
	case o.Jitter == 0:
		o.Jitter = DefaultRefreshJitter
	case o.Jitter < 0:
		o.Jitter = 0
	}

	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}
