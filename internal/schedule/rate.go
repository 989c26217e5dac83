package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Limits of Secrets Manager's schedules. Its user guide page
// rotate-secrets_schedule.html gives 4 hours as the shortest interval and
// 999 days as the longest rotation period. Its API reference for
// RotationRulesType gives AutomaticallyAfterDays a range of 1 to 1000.
const (
	minInterval     = 4 * time.Hour
	maxRateDays     = 999
	maxRateHours    = maxRateDays * 24
	maxAfterDays    = 1000
	day             = 24 * time.Hour
	rateUnitsHelp   = "use hour, hours, day or days, for example rate(12 hours) or rate(10 days)"
	tooFrequentHelp = "Secrets Manager rotates at most every 4 hours"
)

// interval is a schedule that repeats a fixed time after the last rotation.
// Whole-day intervals start at midnight UTC of the day they fall on, and
// hour intervals on the hour, because Secrets Manager opens rotation windows
// on the hour. The intervals of Every are not aligned.
type interval struct {
	every time.Duration
	align time.Duration // 0, time.Hour or day
}

var _ cron.Schedule = interval{}

// Next returns the time one interval after t, aligned.
func (i interval) Next(t time.Time) time.Time {
	next := t.UTC().Add(i.every)
	if i.align == day {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d+int(i.every/day), 0, 0, 0, 0, time.UTC)
	}
	if i.align > 0 {
		return next.Truncate(i.align)
	}
	return next
}

// parseRate parses the inside of rate(…), such as "10 days".
func parseRate(inner string) (interval, error) {
	parts := strings.Fields(inner)
	if len(parts) != 2 {
		return interval{}, fmt.Errorf("rate needs a number and a unit; %s", rateUnitsHelp)
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil || strings.HasPrefix(parts[0], "+") || n < 1 {
		return interval{}, fmt.Errorf("rate value %q is not a positive whole number; %s", parts[0], rateUnitsHelp)
	}

	switch parts[1] {
	case "hour", "hours":
		return hourRate(n)
	case "day", "days":
		return dayRate(n)
	case "minute", "minutes", "second", "seconds":
		return interval{}, fmt.Errorf("rate unit %q is too short; %s, so %s", parts[1], tooFrequentHelp, rateUnitsHelp)
	default:
		return interval{}, fmt.Errorf("rate unit %q is not supported; %s", parts[1], rateUnitsHelp)
	}
}

func hourRate(n int) (interval, error) {
	if n < 4 {
		return interval{}, fmt.Errorf("rate of %s is too frequent; %s, for example rate(4 hours)", hours(n), tooFrequentHelp)
	}
	if n > maxRateHours {
		return interval{}, fmt.Errorf("rate of %d hours is longer than the maximum of %d days; use at most rate(%d days)", n, maxRateDays, maxRateDays)
	}
	return interval{every: time.Duration(n) * time.Hour, align: time.Hour}, nil
}

// hours returns "1 hour" or "N hours".
func hours(n int) string {
	if n == 1 {
		return "1 hour"
	}
	return fmt.Sprintf("%d hours", n)
}

func dayRate(n int) (interval, error) {
	if n > maxRateDays {
		return interval{}, fmt.Errorf("rate of %d days is longer than the maximum of %d days; use at most rate(%d days)", n, maxRateDays, maxRateDays)
	}
	return interval{every: time.Duration(n) * day, align: day}, nil
}
