// Package schedule parses Secrets Manager rotation schedules: the
// AutomaticallyAfterDays, ScheduleExpression and Duration of a secret's
// RotationRules. It reads rate(N hours), rate(N days) and six-field cron(…)
// expressions in UTC with Secrets Manager's rules (minutes 0, year *, one of
// day-of-month and day-of-week ?, SUN = 1, L and #, at most every 4 hours),
// and yields the rotation window's start times as a robfig/cron/v3 Schedule.
package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/keyturn/keyturn/keystore"
)

// ErrInvalid matches every error that Parse and ParseExpression return.
var ErrInvalid = errors.New("invalid rotation schedule")

// ErrNoSchedule matches the error Parse returns for rules that set neither
// AutomaticallyAfterDays nor ScheduleExpression. That error matches
// ErrInvalid too, because Secrets Manager rejects such rules, but a secret
// stored without a schedule is valid: it rotates only when asked to.
var ErrNoSchedule = errors.New("no schedule is set")

// maxExpressionLength caps the expressions keyturn parses, so that a long
// input cannot slow the parser. Real schedules are a few dozen characters.
const maxExpressionLength = 256

// expectedForm ends the errors for expressions in another cron dialect.
const expectedForm = "Secrets Manager expects rate(N hours), rate(N days) or a six-field " +
	"cron(minutes hours day-of-month month day-of-week year) in UTC, such as cron(0 4 * * ? *)"

// Schedule is a parsed rotation schedule: when each rotation window opens
// and how long it stays open. Secrets Manager may start a rotation at any
// time inside the window.
type Schedule struct {
	desc     string
	cron     *cronSchedule // nil for interval schedules
	interval interval      // for rate(), AutomaticallyAfterDays and Every
	window   time.Duration
}

// Parse parses a secret's rotation rules. Exactly one of
// AutomaticallyAfterDays (1 to 1000) and ScheduleExpression must be set;
// Duration is optional. AutomaticallyAfterDays behaves as rate(N days).
func Parse(rules keystore.RotationRules) (*Schedule, error) {
	days, expr := rules.AutomaticallyAfterDays, rules.ScheduleExpression
	switch {
	case days != 0 && expr != "":
		return nil, fmt.Errorf("%w: AutomaticallyAfterDays %d and ScheduleExpression %q are both set; set only one of them", ErrInvalid, days, expr)
	case expr != "":
		return ParseExpression(expr, rules.Duration)
	case days == 0:
		return nil, fmt.Errorf("%w: %w; set AutomaticallyAfterDays or ScheduleExpression, for example rate(30 days)", ErrInvalid, ErrNoSchedule)
	case days < 1 || days > maxAfterDays:
		return nil, fmt.Errorf("%w: AutomaticallyAfterDays %d is out of range; use 1 to %d", ErrInvalid, days, maxAfterDays)
	}

	i := interval{every: time.Duration(days) * day, align: day}
	w, err := intervalWindow(i, rules.Duration)
	if err != nil {
		return nil, fmt.Errorf("%w: AutomaticallyAfterDays %d: %w", ErrInvalid, days, err)
	}
	desc := fmt.Sprintf("AutomaticallyAfterDays %d, window %s", days, FormatDuration(w))
	return &Schedule{desc: desc, interval: i, window: w}, nil
}

// ParseExpression parses a ScheduleExpression and an optional Duration, the
// window length such as "3h" ("" for the default: one hour for schedules in
// hours, the rest of the UTC day for schedules in days).
func ParseExpression(expr, duration string) (*Schedule, error) {
	s, err := parseExpression(expr, duration)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrInvalid, expr, err)
	}
	return s, nil
}

func parseExpression(expr, duration string) (*Schedule, error) {
	if len(expr) > maxExpressionLength {
		return nil, fmt.Errorf("expression is %d characters long; Secrets Manager allows at most %d", len(expr), maxExpressionLength)
	}
	if inner, ok := cutCall(expr, "rate"); ok {
		return parseRateSchedule(expr, inner, duration)
	}
	if inner, ok := cutCall(expr, "cron"); ok {
		return parseCronSchedule(expr, inner, duration)
	}
	return nil, dialectError(expr)
}

// cutCall returns the text inside name(…).
func cutCall(expr, name string) (string, bool) {
	inner, ok := strings.CutPrefix(expr, name+"(")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(inner, ")")
}

// dialectError explains that expr is not written in Secrets Manager's form,
// naming the dialect it looks like.
func dialectError(expr string) error {
	lower := strings.ToLower(expr)
	switch {
	case strings.HasPrefix(expr, "@"):
		return fmt.Errorf("this is a robfig/cron descriptor, not a Secrets Manager expression; %s", expectedForm)
	case lower != expr && (strings.HasPrefix(lower, "rate(") || strings.HasPrefix(lower, "cron(")):
		return fmt.Errorf("rate and cron must be written in lower case; %s", expectedForm)
	case strings.HasPrefix(expr, "rate(") || strings.HasPrefix(expr, "cron("):
		return fmt.Errorf("the expression must end with ); %s", expectedForm)
	case len(strings.Fields(expr)) >= 5:
		return fmt.Errorf("this is a bare crontab line, not a Secrets Manager expression; %s", expectedForm)
	default:
		return fmt.Errorf("this is not a schedule expression; %s", expectedForm)
	}
}

func parseRateSchedule(expr, inner, duration string) (*Schedule, error) {
	i, err := parseRate(inner)
	if err != nil {
		return nil, err
	}
	w, err := intervalWindow(i, duration)
	if err != nil {
		return nil, err
	}
	return &Schedule{desc: expr + ", window " + FormatDuration(w), interval: i, window: w}, nil
}

func parseCronSchedule(expr, inner, duration string) (*Schedule, error) {
	c, err := parseCron(inner)
	if err != nil {
		return nil, err
	}
	if err := checkFrequency(c); err != nil {
		return nil, err
	}
	w, err := cronWindow(c, duration)
	if err != nil {
		return nil, err
	}
	return &Schedule{desc: expr + ", window " + FormatDuration(w), cron: c, window: w}, nil
}

// checkFrequency rejects a schedule that never fires or that fires less
// than 4 hours apart, within a day or from one day's last hour to the next
// day's first.
func checkFrequency(c *cronSchedule) error {
	if c.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return fmt.Errorf("it never fires, because no date matches its day and month fields; check the day-of-month against the months")
	}
	if gap := c.minHourGap(); gap < 4 {
		return fmt.Errorf("it fires %s apart; %s, so space the hours at least 4 apart, for example cron(0 */4 * * ? *)", FormatDuration(time.Duration(gap)*time.Hour), tooFrequentHelp)
	}
	overnight := 24 - c.lastHour() + c.firstHour()
	if overnight >= 4 {
		return nil
	}
	if _, consecutive := c.scanDays(); consecutive {
		return fmt.Errorf("it fires at %02d:00 and again at %02d:00 the next day, %s apart; %s, so space the hours at least 4 apart across midnight", c.lastHour(), c.firstHour(), FormatDuration(time.Duration(overnight)*time.Hour), tooFrequentHelp)
	}
	return nil
}

// Every returns a schedule that rotates d after each rotation, with no
// 4-hour minimum, for development and tests only: Secrets Manager accepts no
// such schedule. Intervals under a second are rounded up to one second.
func Every(d time.Duration) *Schedule {
	d = max(d, time.Second)
	return &Schedule{
		desc:     fmt.Sprintf("every %s (development only)", FormatDuration(d)),
		interval: interval{every: d},
		window:   d,
	}
}

// Next returns when the next rotation is due, in UTC and never before now.
// lastRotated is the last successful rotation, the zero time if there was
// none.
//
// For rate(), AutomaticallyAfterDays and Every, the rotation is due one
// interval after lastRotated (aligned to midnight UTC for days and to the
// hour for hours), or now if that has passed or the secret was never
// rotated. For cron(), it is due now if a window is open and the secret has
// not rotated since it opened, and otherwise when the next window opens.
func (s *Schedule) Next(lastRotated, now time.Time) time.Time {
	now = now.UTC()
	if s.cron != nil {
		return s.nextCron(lastRotated, now)
	}
	if lastRotated.IsZero() {
		return now
	}
	if due := s.interval.Next(lastRotated); due.After(now) {
		return due
	}
	return now
}

func (s *Schedule) nextCron(lastRotated, now time.Time) time.Time {
	// Windows never overlap, so the first start after now - window is the
	// start of the window that is open now, if one is.
	opened := s.cron.Next(now.Add(-s.window))
	if !opened.After(now) && lastRotated.Before(opened) {
		return now
	}
	return s.cron.Next(now)
}

// Cron returns the schedule as a robfig/cron/v3 Schedule, whose Next(t) is
// the first window start after t. For interval schedules that is one
// interval after t, aligned as in (*Schedule).Next, so t should be the last
// rotation: the interface has no separate input for it.
func (s *Schedule) Cron() cron.Schedule {
	if s.cron != nil {
		return s.cron
	}
	return s.interval
}

// Window returns how long each rotation window stays open after it starts.
func (s *Schedule) Window() time.Duration { return s.window }

// String returns the schedule as written and its window, such as
// "cron(0 16 1,15 * ? *), window 8h".
func (s *Schedule) String() string { return s.desc }

// FormatDuration prints d as time.Duration.String does, without its zero
// minutes and seconds: 24h, 1h30m, 30s rather than 24h0m0s.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
