package schedule

import "time"

// civilDay is a UTC calendar date. Stepping it by hand, rather than with
// time.AddDate, keeps the 400-year scans in Parse fast.
type civilDay struct {
	year, month, day int
	weekday          int // SUN = 1 … SAT = 7, as in Secrets Manager
}

func dayOf(t time.Time) civilDay {
	y, m, d := t.Date()
	return civilDay{year: y, month: int(m), day: d, weekday: int(t.Weekday()) + 1}
}

func (d civilDay) monthLength() int {
	switch d.month {
	case 2:
		if d.year%4 == 0 && (d.year%100 != 0 || d.year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	default:
		return 31
	}
}

func (d civilDay) next() civilDay {
	d.weekday = d.weekday%7 + 1
	d.day++
	if d.day > d.monthLength() {
		d.day = 1
		d.month++
	}
	if d.month > 12 {
		d.month = 1
		d.year++
	}
	return d
}

func (d civilDay) firstOfNextMonth() civilDay {
	skipped := d.monthLength() - d.day + 1
	d.weekday = (d.weekday-1+skipped)%7 + 1
	d.day = 1
	d.month++
	if d.month > 12 {
		d.month = 1
		d.year++
	}
	return d
}
