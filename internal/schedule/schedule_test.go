package schedule_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

// now is a Wednesday afternoon.
var now = time.Date(2024, 5, 15, 12, 34, 56, 0, time.UTC)

func at(month time.Month, day, hour int) time.Time {
	return time.Date(2024, month, day, hour, 0, 0, 0, time.UTC)
}

// TestCronExamples runs the cron examples of Secrets Manager's user guide
// (rotate-secrets_schedule), then more cases of L, #, steps, names and
// leap days, from a fixed now.
func TestCronExamples(t *testing.T) {
	tests := []struct {
		expr   string
		window time.Duration
		next   []time.Time
	}{
		{"cron(0 10 * * ? *)", 14 * time.Hour,
			[]time.Time{at(5, 16, 10), at(5, 17, 10), at(5, 18, 10)}},
		{"cron(0 18 ? * SAT *)", 6 * time.Hour,
			[]time.Time{at(5, 18, 18), at(5, 25, 18), at(6, 1, 18)}},
		{"cron(0 8 1 * ? *)", 16 * time.Hour,
			[]time.Time{at(6, 1, 8), at(7, 1, 8), at(8, 1, 8)}},
		{"cron(0 1 * 1/3 SUN *)", 23 * time.Hour,
			[]time.Time{at(7, 7, 1), at(7, 14, 1), at(7, 21, 1)}},
		{"cron(0 17 L * ? *)", 7 * time.Hour,
			[]time.Time{at(5, 31, 17), at(6, 30, 17), at(7, 31, 17)}},
		{"cron(0 8 ? * MON-FRI *)", 16 * time.Hour,
			[]time.Time{at(5, 16, 8), at(5, 17, 8), at(5, 20, 8)}},
		{"cron(0 16 1,15 * ? *)", 8 * time.Hour,
			[]time.Time{at(5, 15, 16), at(6, 1, 16), at(6, 15, 16)}},
		{"cron(0 0 ? * SUN#1 *)", 24 * time.Hour,
			[]time.Time{at(6, 2, 0), at(7, 7, 0), at(8, 4, 0)}},
		{"cron(0 4/12 * * ? *)", time.Hour,
			[]time.Time{at(5, 15, 16), at(5, 16, 4), at(5, 16, 16)}},
		{"cron(0 0 ? * 6#2 *)", 24 * time.Hour,
			[]time.Time{at(6, 14, 0), at(7, 12, 0), at(8, 9, 0)}},
		{"cron(0 12 ? * 6L *)", 12 * time.Hour,
			[]time.Time{at(5, 31, 12), at(6, 28, 12), at(7, 26, 12)}},
		{"cron(0 12 ? * FRIL *)", 12 * time.Hour,
			[]time.Time{at(5, 31, 12), at(6, 28, 12), at(7, 26, 12)}},
		{"cron(0 0 ? * L *)", 24 * time.Hour,
			[]time.Time{at(5, 18, 0), at(5, 25, 0), at(6, 1, 0)}},
		{"cron(0 3 29 FEB ? *)", 21 * time.Hour,
			[]time.Time{time.Date(2028, 2, 29, 3, 0, 0, 0, time.UTC), time.Date(2032, 2, 29, 3, 0, 0, 0, time.UTC)}},
		{"cron(0 0,12 ? * tue,thu *)", time.Hour,
			[]time.Time{at(5, 16, 0), at(5, 16, 12), at(5, 21, 0)}},
		{"cron(0 */6 1-3 JAN-MAR,JUN ? *)", time.Hour,
			[]time.Time{at(6, 1, 0), at(6, 1, 6), at(6, 1, 12)}},
		{"cron(0 1,22 ? * MON,WED *)", time.Hour,
			[]time.Time{at(5, 15, 22), at(5, 20, 1), at(5, 20, 22)}},
		{"cron(0 20 ? * 2#5 *)", 4 * time.Hour,
			[]time.Time{at(7, 29, 20), at(9, 30, 20), at(12, 30, 20)}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := schedule.ParseExpression(tt.expr, "")
			if err != nil {
				t.Fatalf("ParseExpression: %v", err)
			}
			if got := s.Window(); got != tt.window {
				t.Errorf("Window() = %v, want %v", got, tt.window)
			}
			c, from := s.Cron(), now
			for i, want := range tt.next {
				got := c.Next(from)
				if !got.Equal(want) {
					t.Fatalf("fire %d: Next(%v) = %v, want %v", i+1, from, got, want)
				}
				from = got
			}
		})
	}
}

// TestRateExamples runs the rate examples of Secrets Manager's user guide,
// counted from the last rotation.
func TestRateExamples(t *testing.T) {
	lastRotated := time.Date(2024, 5, 10, 15, 20, 0, 0, time.UTC)
	tests := []struct {
		expr   string
		window time.Duration
		last   time.Time
		next   time.Time
	}{
		{"rate(10 days)", 24 * time.Hour, lastRotated, at(5, 20, 0)},
		{"rate(8 days)", 24 * time.Hour, lastRotated, at(5, 18, 0)},
		{"rate(1 day)", 24 * time.Hour, at(5, 15, 1), at(5, 16, 0)},
		{"rate(4 hours)", time.Hour, time.Date(2024, 5, 15, 10, 20, 0, 0, time.UTC), at(5, 15, 14)},
		{"rate(12 hours)", time.Hour, at(5, 15, 9), at(5, 15, 21)},
		{"rate(999 days)", 24 * time.Hour, lastRotated, time.Date(2027, 2, 3, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := schedule.ParseExpression(tt.expr, "")
			if err != nil {
				t.Fatalf("ParseExpression: %v", err)
			}
			if got := s.Window(); got != tt.window {
				t.Errorf("Window() = %v, want %v", got, tt.window)
			}
			if got := s.Next(tt.last, now); !got.Equal(tt.next) {
				t.Errorf("Next(%v, now) = %v, want %v", tt.last, got, tt.next)
			}
			if got := s.Cron().Next(tt.last); !got.Equal(tt.next) {
				t.Errorf("Cron().Next(%v) = %v, want %v", tt.last, got, tt.next)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name  string
		rules keystore.RotationRules
		want  []string // substrings of the error
	}{
		{"nothing set", keystore.RotationRules{},
			[]string{"no schedule is set", "rate(30 days)"}},
		{"duration alone", keystore.RotationRules{Duration: "3h"},
			[]string{"no schedule is set"}},
		{"both set", keystore.RotationRules{AutomaticallyAfterDays: 30, ScheduleExpression: "rate(30 days)"},
			[]string{"AutomaticallyAfterDays 30", `"rate(30 days)"`, "set only one"}},
		{"zero days", keystore.RotationRules{AutomaticallyAfterDays: -1},
			[]string{"AutomaticallyAfterDays -1", "use 1 to 1000"}},
		{"1001 days", keystore.RotationRules{AutomaticallyAfterDays: 1001},
			[]string{"AutomaticallyAfterDays 1001", "use 1 to 1000"}},
		{"days bad duration", keystore.RotationRules{AutomaticallyAfterDays: 7, Duration: "25h"},
			[]string{"AutomaticallyAfterDays 7", `"25h"`, "1h to 24h"}},

		{"too frequent hours", rulesOf("cron(0 8-10 ? * MON-FRI *)"),
			[]string{`"cron(0 8-10 ? * MON-FRI *)"`, "1h apart", "at most every 4 hours"}},
		{"every 2 hours", rulesOf("cron(0 */2 * * ? *)"),
			[]string{"2h apart", "cron(0 */4 * * ? *)"}},
		{"across midnight", rulesOf("cron(0 1,22 * * ? *)"),
			[]string{"22:00 and again at 01:00 the next day", "3h apart"}},
		{"across midnight on consecutive weekdays", rulesOf("cron(0 1,22 ? * MON,TUE *)"),
			[]string{"22:00 and again at 01:00 the next day"}},
		{"across a month end", rulesOf("cron(0 0,22 ? * 7L,1#1 *)"),
			[]string{"22:00 and again at 00:00 the next day", "2h apart"}},
		{"minutes not 0", rulesOf("cron(30 4 * * ? *)"),
			[]string{`minutes field is "30"`, "must be 0"}},
		{"year not star", rulesOf("cron(0 4 * * ? 2025)"),
			[]string{`year field is "2025"`, "must be *"}},
		{"both days set", rulesOf("cron(0 4 1 * MON *)"),
			[]string{`day-of-month "1" and day-of-week "MON" are both set`, "put ? in one"}},
		{"both days ?", rulesOf("cron(0 4 ? * ? *)"),
			[]string{"both ?", "set one of them"}},
		{"both days star", rulesOf("cron(0 4 * * * *)"),
			[]string{"both *", "put ? in one"}},
		{"never fires", rulesOf("cron(0 4 30 FEB ? *)"),
			[]string{"never fires"}},
		{"fifth week only", rulesOf("cron(0 4 ? * MON#6 *)"),
			[]string{`"MON#6"`, "1 to 5"}},
		{"bad weekday", rulesOf("cron(0 4 ? * 8 *)"),
			[]string{`day-of-week field has invalid value "8"`, "SUN = 1"}},
		{"sunday zero", rulesOf("cron(0 4 ? * 0 *)"),
			[]string{`invalid value "0"`, "1 to 7"}},
		{"bad month", rulesOf("cron(0 4 1 13 ? *)"),
			[]string{`month field has invalid value "13"`, "JAN-DEC"}},
		{"hour 24", rulesOf("cron(0 24 * * ? *)"),
			[]string{`hours field has invalid value "24"`, "0 to 23"}},
		{"backward range", rulesOf("cron(0 4 ? * FRI-MON *)"),
			[]string{`range "FRI-MON" that runs backwards`}},
		{"zero step", rulesOf("cron(0 */0 * * ? *)"),
			[]string{`step "0"`}},
		{"empty element", rulesOf("cron(0 4,,8 * * ? *)"),
			[]string{"empty list element"}},
		{"question in hours", rulesOf("cron(0 ? * * ? *)"),
			[]string{"hours field cannot contain ?"}},
		{"nearest weekday", rulesOf("cron(0 4 15W * ? *)"),
			[]string{"does not support W"}},

		{"five-field cron", rulesOf("cron(0 4 * * *)"),
			[]string{"has 5 fields", "expects six", "cron(0 4 * * ? *)"}},
		{"seven-field cron", rulesOf("cron(0 0 4 * * ? *)"),
			[]string{"has 7 fields"}},
		{"one-field cron", rulesOf("cron(daily)"),
			[]string{"has 1 field,", "expects six"}},
		{"bare crontab", rulesOf("0 */6 * * *"),
			[]string{`"0 */6 * * *"`, "bare crontab line", "six-field", "cron(0 4 * * ? *)"}},
		{"robfig descriptor", rulesOf("@every 4h"),
			[]string{`"@every 4h"`, "robfig/cron descriptor", "rate(N hours)"}},
		{"upper case", rulesOf("RATE(4 hours)"),
			[]string{"lower case"}},
		{"no closing parenthesis", rulesOf("rate(4 hours"),
			[]string{"must end with )"}},
		{"nonsense", rulesOf("weekly"),
			[]string{"not a schedule expression"}},
		{"too long", rulesOf("cron(0 4 " + strings.Repeat("1,", 130) + "1 * ? *)"),
			[]string{"at most 256"}},

		{"rate minutes", rulesOf("rate(30 minutes)"),
			[]string{`rate unit "minutes" is too short`, "rate(12 hours)"}},
		{"rate weeks", rulesOf("rate(2 weeks)"),
			[]string{`rate unit "weeks" is not supported`}},
		{"rate 3 hours", rulesOf("rate(3 hours)"),
			[]string{"rate of 3 hours is too frequent", "rate(4 hours)"}},
		{"rate 1 hour", rulesOf("rate(1 hour)"),
			[]string{"rate of 1 hour is too frequent", "rate(4 hours)"}},
		{"rate 0 days", rulesOf("rate(0 days)"),
			[]string{`rate value "0" is not a positive whole number`}},
		{"rate 1000 days", rulesOf("rate(1000 days)"),
			[]string{"rate of 1000 days is longer than the maximum of 999 days"}},
		{"rate 1001 days", rulesOf("rate(1001 days)"),
			[]string{"rate of 1001 days"}},
		{"rate no unit", rulesOf("rate(4)"),
			[]string{"needs a number and a unit"}},
		{"rate fraction", rulesOf("rate(1.5 days)"),
			[]string{`rate value "1.5"`}},

		{"duration minutes", keystore.RotationRules{ScheduleExpression: "cron(0 4 * * ? *)", Duration: "2h30m"},
			[]string{`duration "2h30m" is not a whole number of hours`, "3h"}},
		{"duration no unit", keystore.RotationRules{ScheduleExpression: "cron(0 4 * * ? *)", Duration: "3"},
			[]string{`duration "3"`}},
		{"duration zero", keystore.RotationRules{ScheduleExpression: "cron(0 4 * * ? *)", Duration: "0h"},
			[]string{`duration "0h" is out of range`}},
		{"window past midnight", keystore.RotationRules{ScheduleExpression: "cron(0 22 * * ? *)", Duration: "3h"},
			[]string{`duration "3h" from 22:00 runs past the end of the UTC day`, "at most 2h"}},
		{"window overlaps next", keystore.RotationRules{ScheduleExpression: "cron(0 4,12 * * ? *)", Duration: "9h"},
			[]string{`duration "9h" overlaps the next window`, "at most 8h"}},
		{"hourly window past midnight", keystore.RotationRules{ScheduleExpression: "cron(0 4/12 * * ? *)", Duration: "12h"},
			[]string{`duration "12h" from 16:00 runs past the end of the UTC day`}},
		{"rate window overlaps", keystore.RotationRules{ScheduleExpression: "rate(4 hours)", Duration: "5h"},
			[]string{`duration "5h" overlaps the next window`, "at most 4h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := schedule.Parse(tt.rules)
			if err == nil {
				t.Fatalf("Parse(%+v) = %v, want an error", tt.rules, s)
			}
			if !errors.Is(err, schedule.ErrInvalid) {
				t.Errorf("error %q does not match ErrInvalid", err)
			}
			noSchedule := tt.rules.AutomaticallyAfterDays == 0 && tt.rules.ScheduleExpression == ""
			if errors.Is(err, schedule.ErrNoSchedule) != noSchedule {
				t.Errorf("error %q: errors.Is(err, ErrNoSchedule) = %t, want %t", err, !noSchedule, noSchedule)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func rulesOf(expr string) keystore.RotationRules {
	return keystore.RotationRules{ScheduleExpression: expr}
}

func TestParseWindows(t *testing.T) {
	tests := []struct {
		rules keystore.RotationRules
		want  time.Duration
	}{
		{keystore.RotationRules{AutomaticallyAfterDays: 30}, 24 * time.Hour},
		{keystore.RotationRules{AutomaticallyAfterDays: 1000, Duration: "2h"}, 2 * time.Hour},
		{keystore.RotationRules{ScheduleExpression: "cron(0 4/12 * * ? *)", Duration: "8h"}, 8 * time.Hour},
		{keystore.RotationRules{ScheduleExpression: "cron(0 0/4 * * ? *)", Duration: "4h"}, 4 * time.Hour},
		{keystore.RotationRules{ScheduleExpression: "cron(0 0 * * ? *)", Duration: "24h"}, 24 * time.Hour},
		{keystore.RotationRules{ScheduleExpression: "cron(0 21 * * ? *)", Duration: "3h"}, 3 * time.Hour},
		{keystore.RotationRules{ScheduleExpression: "rate(4 hours)", Duration: "4h"}, 4 * time.Hour},
		{keystore.RotationRules{ScheduleExpression: "rate(10 days)", Duration: "1h"}, time.Hour},
	}
	for _, tt := range tests {
		s, err := schedule.Parse(tt.rules)
		if err != nil {
			t.Errorf("Parse(%+v): %v", tt.rules, err)
			continue
		}
		if got := s.Window(); got != tt.want {
			t.Errorf("Parse(%+v).Window() = %v, want %v", tt.rules, got, tt.want)
		}
	}
}

func TestNextCron(t *testing.T) {
	daily := mustParse(t, keystore.RotationRules{ScheduleExpression: "cron(0 10 * * ? *)"})
	short := mustParse(t, keystore.RotationRules{ScheduleExpression: "cron(0 10 * * ? *)", Duration: "1h"})
	tests := []struct {
		name        string
		s           *schedule.Schedule
		lastRotated time.Time
		want        time.Time
	}{
		{"open window, not rotated in it", daily, at(5, 14, 10), now},
		{"open window, never rotated", daily, time.Time{}, now},
		{"open window, rotated in it", daily, at(5, 15, 11), at(5, 16, 10)},
		{"closed window, missed", short, at(5, 14, 10), at(5, 16, 10)},
		{"closed window, never rotated", short, time.Time{}, at(5, 16, 10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Next(tt.lastRotated, now); !got.Equal(tt.want) {
				t.Errorf("Next(%v, now) = %v, want %v", tt.lastRotated, got, tt.want)
			}
		})
	}
}

func TestNextInterval(t *testing.T) {
	tenDays := mustParse(t, keystore.RotationRules{AutomaticallyAfterDays: 10})
	fourHours := mustParse(t, keystore.RotationRules{ScheduleExpression: "rate(4 hours)"})
	tests := []struct {
		name        string
		s           *schedule.Schedule
		lastRotated time.Time
		want        time.Time
	}{
		{"days due later", tenDays, at(5, 10, 15), at(5, 20, 0)},
		{"days overdue", tenDays, at(5, 1, 15), now},
		{"days due today", tenDays, at(5, 5, 23), now},
		{"days never rotated", tenDays, time.Time{}, now},
		{"hours due later", fourHours, time.Date(2024, 5, 15, 11, 59, 0, 0, time.UTC), at(5, 15, 15)},
		{"hours overdue", fourHours, at(5, 15, 8), now},
		{"local time zone", tenDays, at(5, 10, 23).In(time.FixedZone("UTC+5", 5*3600)), at(5, 20, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.s.Next(tt.lastRotated, now)
			if !got.Equal(tt.want) {
				t.Errorf("Next(%v, now) = %v, want %v", tt.lastRotated, got, tt.want)
			}
			if got.Location() != time.UTC {
				t.Errorf("Next(%v, now) is in %v, want UTC", tt.lastRotated, got.Location())
			}
		})
	}
}

func TestEvery(t *testing.T) {
	s := schedule.Every(90 * time.Second)
	last := now.Add(-time.Minute)
	if got, want := s.Next(last, now), last.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("Next = %v, want %v", got, want)
	}
	if got := s.Next(time.Time{}, now); !got.Equal(now) {
		t.Errorf("Next for never rotated = %v, want now", got)
	}
	if got, want := s.Cron().Next(now), now.Add(90*time.Second); !got.Equal(want) {
		t.Errorf("Cron().Next = %v, want %v", got, want)
	}
	if got := s.Window(); got != 90*time.Second {
		t.Errorf("Window() = %v, want 1m30s", got)
	}
	if got := s.String(); !strings.Contains(got, "development only") {
		t.Errorf("String() = %q, want it to say development only", got)
	}
	if got := schedule.Every(0).Cron().Next(now); !got.Equal(now.Add(time.Second)) {
		t.Errorf("Every(0) fires at %v, want one second later", got)
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		rules keystore.RotationRules
		want  string
	}{
		{rulesOf("cron(0 16 1,15 * ? *)"), "cron(0 16 1,15 * ? *), window 8h"},
		{keystore.RotationRules{ScheduleExpression: "rate(4 hours)", Duration: "2h"}, "rate(4 hours), window 2h"},
		{keystore.RotationRules{AutomaticallyAfterDays: 30}, "AutomaticallyAfterDays 30, window 24h"},
	}
	for _, tt := range tests {
		if got := mustParse(t, tt.rules).String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestEveryString(t *testing.T) {
	tests := []struct {
		every time.Duration
		want  string
	}{
		{time.Hour, "every 1h (development only)"},
		{30 * time.Second, "every 30s (development only)"},
		{90 * time.Minute, "every 1h30m (development only)"},
		{2 * time.Minute, "every 2m (development only)"},
		{time.Hour + 30*time.Second, "every 1h0m30s (development only)"},
	}
	for _, tt := range tests {
		if got := schedule.Every(tt.every).String(); got != tt.want {
			t.Errorf("Every(%v).String() = %q, want %q", tt.every, got, tt.want)
		}
	}
}

func mustParse(t *testing.T, rules keystore.RotationRules) *schedule.Schedule {
	t.Helper()
	s, err := schedule.Parse(rules)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", rules, err)
	}
	return s
}
