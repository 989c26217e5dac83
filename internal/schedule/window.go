package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseDuration parses a rotation window such as "3h". Secrets Manager
// takes whole hours only, from 1h to 24h.
func parseDuration(text string) (time.Duration, error) {
	digits, ok := strings.CutSuffix(text, "h")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || len(digits) > 2 || strings.ContainsAny(digits, "+-") {
		return 0, fmt.Errorf("duration %q is not a whole number of hours; write it as 3h for a three-hour window", text)
	}
	if n < 1 || n > 24 {
		return 0, fmt.Errorf("duration %q is out of range; use 1h to 24h", text)
	}
	return time.Duration(n) * time.Hour, nil
}

// cronWindow returns the window of a cron schedule: the given duration, or
// by default one hour when it fires several times a day and the rest of the
// UTC day when it fires once.
func cronWindow(c *cronSchedule, duration string) (time.Duration, error) {
	if duration == "" {
		if c.firesDaily() {
			return time.Duration(24-c.firstHour()) * time.Hour, nil
		}
		return time.Hour, nil
	}
	w, err := parseDuration(duration)
	if err != nil {
		return 0, err
	}

	hours := int(w / time.Hour)
	if last := c.lastHour(); last+hours > 24 {
		return 0, fmt.Errorf("duration %q from %02d:00 runs past the end of the UTC day; use at most %dh, or an earlier hour", duration, last, 24-last)
	}
	if gap := c.minHourGap(); hours > gap {
		return 0, fmt.Errorf("duration %q overlaps the next window, which opens %d hours later; use at most %dh", duration, gap, gap)
	}
	return w, nil
}

// intervalWindow returns the window of a rate or AutomaticallyAfterDays
// schedule: the given duration, or by default one hour for hour rates and
// the whole UTC day, from midnight, for day rates.
func intervalWindow(i interval, duration string) (time.Duration, error) {
	if duration == "" {
		if i.align == day {
			return day, nil
		}
		return time.Hour, nil
	}
	w, err := parseDuration(duration)
	if err != nil {
		return 0, err
	}
	if w > i.every {
		return 0, fmt.Errorf("duration %q overlaps the next window, which opens %d hours later; use at most %dh", duration, i.every/time.Hour, i.every/time.Hour)
	}
	return w, nil
}
