package schedule

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestCronMatchesRobfig compares Next with robfig/cron/v3's on random
// schedules that robfig can express: no L, no #.
func TestCronMatchesRobfig(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		c := randomCron(rng, false)
		spec := robfigSpec(c)
		want, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatalf("robfig cannot parse %q: %v", spec, err)
		}
		from := time.Date(2023+rng.IntN(10), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), 0, 0, time.UTC)
		for range 5 {
			w := want.Next(from)
			if w.IsZero() {
				break // robfig looks 5 years ahead only
			}
			if got := c.Next(from); !got.Equal(w) {
				t.Fatalf("%s: Next(%v) = %v, robfig returns %v", spec, from, got, w)
			}
			from = w
		}
	}
}

// TestCronLastAndNth compares Next with a brute-force search over hours on
// random schedules with L, nL and n#k.
func TestCronLastAndNth(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		c := randomCron(rng, true)
		from := time.Date(2023+rng.IntN(10), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), 0, 0, time.UTC)
		for range 3 {
			want := bruteNext(c, from, 3*366*24)
			if want.IsZero() {
				break
			}
			if got := c.Next(from); !got.Equal(want) {
				t.Fatalf("%+v: Next(%v) = %v, want %v", *c, from, got, want)
			}
			from = want
		}
	}
}

func randomCron(rng *rand.Rand, special bool) *cronSchedule {
	c := &cronSchedule{
		hours:     uint32(1 << rng.IntN(24)),
		months:    uint16(randomBits(rng, 1, 12)),
		byWeekday: rng.IntN(2) == 0,
	}
	if rng.IntN(2) == 0 {
		c.hours |= 1 << rng.IntN(24)
	}
	if !c.byWeekday {
		c.monthDays = randomBits(rng, 1, 31)
		c.lastDay = special && rng.IntN(2) == 0
		return c
	}
	c.weekdays = uint8(randomBits(rng, 1, 7))
	if special {
		c.weekdays &= uint8(rng.IntN(256))
		c.lastWeekdays = uint8(randomBits(rng, 1, 7)) & uint8(rng.IntN(256))
		for w := 1; w <= 7; w++ {
			c.nthWeekdays[w] = uint8(randomBits(rng, 1, 5)) & uint8(rng.IntN(256))
		}
	}
	return c
}

// randomBits returns a non-empty random subset of lo..hi.
func randomBits(rng *rand.Rand, lo, hi int) uint64 {
	var bits uint64
	for bits == 0 {
		for v := lo; v <= hi; v++ {
			if rng.IntN(3) == 0 {
				bits |= 1 << v
			}
		}
	}
	return bits
}

// robfigSpec writes c in robfig's five fields, whose days of the week run
// from 0 for Sunday.
func robfigSpec(c *cronSchedule) string {
	dom, dow := "*", "*"
	if c.byWeekday {
		var days []string
		for w := 1; w <= 7; w++ {
			if c.weekdays&(1<<w) != 0 {
				days = append(days, fmt.Sprint(w-1))
			}
		}
		dow = strings.Join(days, ",")
	} else {
		dom = listBits(c.monthDays, 1, 31)
	}
	return fmt.Sprintf("0 %s %s %s %s", listBits(uint64(c.hours), 0, 23), dom, listBits(uint64(c.months), 1, 12), dow)
}

func listBits(bits uint64, lo, hi int) string {
	var values []string
	for v := lo; v <= hi; v++ {
		if bits&(1<<v) != 0 {
			values = append(values, fmt.Sprint(v))
		}
	}
	return strings.Join(values, ",")
}

// bruteNext steps hour by hour from t with the time package, for at most
// limit hours.
func bruteNext(c *cronSchedule, t time.Time, limit int) time.Time {
	h := t.Truncate(time.Hour)
	for range limit {
		h = h.Add(time.Hour)
		if bruteMatches(c, h) {
			return h
		}
	}
	return time.Time{}
}

func bruteMatches(c *cronSchedule, t time.Time) bool {
	if c.hours&(1<<t.Hour()) == 0 || c.months&(1<<int(t.Month())) == 0 {
		return false
	}
	isLastDay := t.AddDate(0, 0, 1).Month() != t.Month()
	if !c.byWeekday {
		return c.monthDays&(1<<t.Day()) != 0 || (c.lastDay && isLastDay)
	}
	w := int(t.Weekday()) + 1
	inLastWeek := t.AddDate(0, 0, 7).Month() != t.Month()
	week := (t.Day()-1)/7 + 1
	return c.weekdays&(1<<w) != 0 ||
		(c.lastWeekdays&(1<<w) != 0 && inLastWeek) ||
		c.nthWeekdays[w]&(1<<week) != 0
}

func TestParseFields(t *testing.T) {
	tests := []struct {
		inner string
		want  cronSchedule
	}{
		{"0 4/12 * * ? *", cronSchedule{hours: 1<<4 | 1<<16, months: 0x1ffe, monthDays: 0xfffffffe}},
		{"0 0 1/10 JAN,apr-Jun ? *", cronSchedule{hours: 1, months: 1<<1 | 1<<4 | 1<<5 | 1<<6, monthDays: 1<<1 | 1<<11 | 1<<21 | 1<<31}},
		{"0 0 L,15 * ? *", cronSchedule{hours: 1, months: 0x1ffe, monthDays: 1 << 15, lastDay: true}},
		{"0 0 ? 1/3 MON-FRI/2 *", cronSchedule{hours: 1, months: 1<<1 | 1<<4 | 1<<7 | 1<<10, byWeekday: true, weekdays: 1<<2 | 1<<4 | 1<<6}},
		{"0 0 ? * L,2L,TUE#3,7#5 *", cronSchedule{hours: 1, months: 0x1ffe, byWeekday: true,
			weekdays: 1 << 7, lastWeekdays: 1 << 2, nthWeekdays: [8]uint8{3: 1 << 3, 7: 1 << 5}}},
		{"0 1 * 1/3 SUN *", cronSchedule{hours: 1 << 1, months: 1<<1 | 1<<4 | 1<<7 | 1<<10, byWeekday: true, weekdays: 1 << 1}},
		{"0 1 15 * * *", cronSchedule{hours: 1 << 1, months: 0x1ffe, monthDays: 1 << 15}},
	}
	for _, tt := range tests {
		got, err := parseCron(tt.inner)
		if err != nil {
			t.Errorf("parseCron(%q): %v", tt.inner, err)
			continue
		}
		if *got != tt.want {
			t.Errorf("parseCron(%q) = %+v, want %+v", tt.inner, *got, tt.want)
		}
	}
}
