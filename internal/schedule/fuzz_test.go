package schedule_test

import (
	"errors"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

// FuzzParse checks that Parse never panics, that every error matches
// ErrInvalid, and that every schedule it accepts fires in the future, at
// least 4 hours apart, with a window of 1 to 24 hours.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"rate(4 hours)", "rate(1 day)", "rate(10 days)", "rate(999 days)",
		"cron(0 10 * * ? *)", "cron(0 18 ? * SAT *)", "cron(0 1 * 1/3 SUN *)",
		"cron(0 17 L * ? *)", "cron(0 8 ? * MON-FRI *)", "cron(0 16 1,15 * ? *)",
		"cron(0 0 ? * SUN#1 *)", "cron(0 4/12 * * ? *)", "cron(0 12 ? * 6L *)",
		"cron(0 */4 ? * L *)", "cron(0 0,20 29 FEB ? *)", "0 */6 * * *", "@every 4h",
	}
	for _, s := range seeds {
		f.Add(s, "", int64(0))
		f.Add(s, "3h", int64(0))
	}
	f.Add("", "", int64(30))
	f.Add("", "25h", int64(1000))

	f.Fuzz(func(t *testing.T, expr, duration string, days int64) {
		rules := keystore.RotationRules{AutomaticallyAfterDays: days, ScheduleExpression: expr, Duration: duration}
		s, err := schedule.Parse(rules)
		if err != nil {
			if !errors.Is(err, schedule.ErrInvalid) {
				t.Fatalf("Parse(%+v) error %q does not match ErrInvalid", rules, err)
			}
			return
		}
		if w := s.Window(); w < time.Hour || w > 24*time.Hour {
			t.Fatalf("Parse(%+v).Window() = %v, want 1h to 24h", rules, w)
		}
		if s.String() == "" {
			t.Fatalf("Parse(%+v).String() is empty", rules)
		}
		checkFirings(t, s, rules)
	})
}

func checkFirings(t *testing.T, s *schedule.Schedule, rules keystore.RotationRules) {
	from := time.Date(2024, 5, 15, 12, 34, 56, 0, time.UTC)
	prev := time.Time{}
	for range 6 {
		next := s.Cron().Next(from)
		if !next.After(from) {
			t.Fatalf("Parse(%+v): Cron().Next(%v) = %v, want a later time", rules, from, next)
		}
		if !prev.IsZero() && next.Sub(prev) < 4*time.Hour {
			t.Fatalf("Parse(%+v): fires at %v and %v, under 4 hours apart", rules, prev, next)
		}
		prev, from = next, next
	}
}
