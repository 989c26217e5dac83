package schedule

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// cronSchedule is a parsed Secrets Manager cron expression. It fires on the
// hour, in UTC, on the days its month and day fields select. robfig/cron/v3
// has no L or #, and numbers the days of the week from 0, so keyturn matches
// days itself.
type cronSchedule struct {
	hours  uint32 // bit h: fires at h:00
	months uint16 // bit m: January is 1

	// byWeekday selects days by the day-of-week fields below; otherwise the
	// day-of-month fields select them.
	byWeekday bool

	monthDays uint64 // bit d: day d of the month
	lastDay   bool   // the last day of the month, L

	weekdays     uint8    // bit w: every weekday w, SUN = 1
	lastWeekdays uint8    // bit w: the last weekday w of the month, as 6L
	nthWeekdays  [8]uint8 // [w] bit n: the nth weekday w of the month, as 2#1
}

var _ cron.Schedule = (*cronSchedule)(nil)

// maxScanDays bounds the search for a matching day. The Gregorian calendar
// repeats its dates and weekdays every 400 years, so a day that matches
// exists within this span or never.
const maxScanDays = 400*366 + 1

// Next returns the first time after t at which the schedule fires, in UTC,
// or the zero time if it never fires.
func (c *cronSchedule) Next(t time.Time) time.Time {
	begin := t.UTC().Truncate(time.Hour).Add(time.Hour)
	day := dayOf(begin)
	fromHour := begin.Hour()

	for range maxScanDays {
		if c.months&(1<<day.month) == 0 {
			day = day.firstOfNextMonth()
			fromHour = 0
			continue
		}
		if c.matchesDay(day) {
			if h := c.firstHourFrom(fromHour); h >= 0 {
				return time.Date(day.year, time.Month(day.month), day.day, h, 0, 0, 0, time.UTC)
			}
		}
		day = day.next()
		fromHour = 0
	}
	return time.Time{}
}

// firstHourFrom returns the first firing hour at or after h, or -1.
func (c *cronSchedule) firstHourFrom(h int) int {
	later := c.hours >> h << h
	if later == 0 {
		return -1
	}
	return bits.TrailingZeros32(later)
}

// matchesDay reports whether the day fields select d. The caller checks the
// month.
func (c *cronSchedule) matchesDay(d civilDay) bool {
	if !c.byWeekday {
		return c.monthDays&(1<<d.day) != 0 || (c.lastDay && d.day == d.monthLength())
	}
	w := d.weekday
	switch {
	case c.weekdays&(1<<w) != 0:
		return true
	case c.lastWeekdays&(1<<w) != 0 && d.day+7 > d.monthLength():
		return true
	default:
		return c.nthWeekdays[w]&(1<<((d.day-1)/7+1)) != 0
	}
}

// firesDaily reports whether the schedule fires on one hour of the day.
func (c *cronSchedule) firesDaily() bool { return bits.OnesCount32(c.hours) == 1 }

func (c *cronSchedule) firstHour() int { return bits.TrailingZeros32(c.hours) }

func (c *cronSchedule) lastHour() int { return 31 - bits.LeadingZeros32(c.hours) }

// minHourGap returns the smallest number of hours between two firings on
// the same day, or 24 if the schedule fires once a day.
func (c *cronSchedule) minHourGap() int {
	gap, prev := 24, -1
	for h := range 24 {
		if c.hours&(1<<h) == 0 {
			continue
		}
		if prev >= 0 {
			gap = min(gap, h-prev)
		}
		prev = h
	}
	return gap
}

// scanDays reports whether any day matches, and whether two consecutive
// days do, over one full 400-year cycle.
func (c *cronSchedule) scanDays() (found, consecutive bool) {
	day := civilDay{year: 2000, month: 1, day: 1, weekday: 7} // a Saturday
	prev := false
	for range maxScanDays {
		match := c.months&(1<<day.month) != 0 && c.matchesDay(day)
		if match && prev {
			return true, true
		}
		found = found || match
		prev = match
		day = day.next()
	}
	return found, false
}

// parseCron parses the inside of cron(…): six fields separated by spaces.
func parseCron(inner string) (*cronSchedule, error) {
	fields := strings.Fields(inner)
	if len(fields) != 6 {
		count := fmt.Sprintf("%d fields", len(fields))
		if len(fields) == 1 {
			count = "1 field"
		}
		return nil, fmt.Errorf("it has %s, but Secrets Manager expects six: cron(minutes hours day-of-month month day-of-week year), for example cron(0 4 * * ? *)", count)
	}
	minutes, hours, dom, month, dow, year := fields[0], fields[1], fields[2], fields[3], fields[4], fields[5]
	if minutes != "0" {
		return nil, fmt.Errorf("minutes field is %q, but it must be 0 because rotation windows open on the hour", minutes)
	}
	if year != "*" {
		return nil, fmt.Errorf("year field is %q, but it must be *", year)
	}

	c := &cronSchedule{}
	h, err := hoursField.parseList(hours)
	if err != nil {
		return nil, err
	}
	c.hours = uint32(h)
	m, err := monthField.parseList(month)
	if err != nil {
		return nil, err
	}
	c.months = uint16(m)
	if err := c.parseDays(dom, dow); err != nil {
		return nil, err
	}
	return c, nil
}

// parseDays parses the day-of-month and day-of-week fields, exactly one of
// which selects the days while the other is ?.
func (c *cronSchedule) parseDays(dom, dow string) error {
	switch {
	case dom == "?" && dow == "?":
		return fmt.Errorf("day-of-month and day-of-week are both ?; set one of them, for example cron(0 10 * * ? *)")
	case dom == "*" && dow == "*":
		return fmt.Errorf("day-of-month and day-of-week are both *; put ? in one of them, for example cron(0 10 * * ? *)")
	case dom != "?" && dom != "*" && dow != "?" && dow != "*":
		return fmt.Errorf("day-of-month %q and day-of-week %q are both set; put ? in one of them, for example cron(0 8 1 * ? *) or cron(0 8 ? * MON *)", dom, dow)
	}

	// NOTE: A * beside a set field is read as ?, because Secrets Manager's
	// user guide lists cron(0 1 * 1/3 SUN *) as an example. Whether the
	// service itself accepts that form is untested.
	if dow == "?" || (dom != "?" && dow == "*") {
		return c.parseMonthDays(dom)
	}
	c.byWeekday = true
	return c.parseWeekdays(dow)
}

// parseMonthDays parses day-of-month: values, ranges, steps and L.
func (c *cronSchedule) parseMonthDays(text string) error {
	for _, elem := range strings.Split(text, ",") {
		switch {
		case elem == "L":
			c.lastDay = true
		case strings.Contains(elem, "W"):
			return fmt.Errorf("day-of-month field has %q, but Secrets Manager does not support W (nearest weekday)", elem)
		default:
			b, err := domField.parseElement(elem)
			if err != nil {
				return err
			}
			c.monthDays |= b
		}
	}
	return nil
}

// parseWeekdays parses day-of-week: values, ranges, steps, L alone (the
// last day of the week, SAT), nL (the last weekday n of the month) and n#k
// (the kth weekday n of the month).
func (c *cronSchedule) parseWeekdays(text string) error {
	for _, elem := range strings.Split(text, ",") {
		var err error
		switch {
		case elem == "L":
			c.weekdays |= 1 << 7
		case strings.Contains(elem, "#"):
			err = c.parseNthWeekday(elem)
		case len(elem) > 1 && strings.HasSuffix(strings.ToUpper(elem), "L"):
			err = c.parseLastWeekday(elem)
		default:
			var b uint64
			b, err = dowField.parseElement(elem)
			c.weekdays |= uint8(b)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *cronSchedule) parseNthWeekday(elem string) error {
	dayText, nText, _ := strings.Cut(elem, "#")
	w, err := dowField.parseValue(dayText)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(nText)
	if err != nil || n < 1 || n > 5 {
		return fmt.Errorf("day-of-week field has %q; after # give which week, 1 to 5, as in MON#1 for the first Monday", elem)
	}
	c.nthWeekdays[w] |= 1 << n
	return nil
}

func (c *cronSchedule) parseLastWeekday(elem string) error {
	w, err := dowField.parseValue(elem[:len(elem)-1])
	if err != nil {
		return fmt.Errorf("day-of-week field has %q; write a single day before L, as in FRIL or 6L for the last Friday of the month", elem)
	}
	c.lastWeekdays |= 1 << w
	return nil
}
