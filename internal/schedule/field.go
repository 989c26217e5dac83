package schedule

import (
	"fmt"
	"strconv"
	"strings"
)

// field describes one numeric field of a cron expression: its name in
// messages, its range and its optional names, such as JAN or SUN.
type field struct {
	name     string
	min, max int
	names    map[string]int
}

var (
	hoursField = field{name: "hours", min: 0, max: 23}
	domField   = field{name: "day-of-month", min: 1, max: 31}
	monthField = field{name: "month", min: 1, max: 12, names: map[string]int{
		"JAN": 1, "FEB": 2, "MAR": 3, "APR": 4, "MAY": 5, "JUN": 6,
		"JUL": 7, "AUG": 8, "SEP": 9, "OCT": 10, "NOV": 11, "DEC": 12,
	}}
	// dowField numbers the days as Secrets Manager does: SUN is 1, SAT is 7.
	dowField = field{name: "day-of-week", min: 1, max: 7, names: map[string]int{
		"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7,
	}}
)

// parseList parses a comma-separated list of elements into a bit set, bit i
// standing for value i.
func (f field) parseList(text string) (uint64, error) {
	var bits uint64
	for _, elem := range strings.Split(text, ",") {
		b, err := f.parseElement(elem)
		if err != nil {
			return 0, err
		}
		bits |= b
	}
	return bits, nil
}

// parseElement parses one of "*", "v", "a-b", "*/s", "v/s" and "a-b/s". A
// step after a single value runs from that value to the field's maximum, so
// hours "4/12" are 4 and 16.
func (f field) parseElement(elem string) (uint64, error) {
	if elem == "" {
		return 0, fmt.Errorf("%s field has an empty list element; separate values with single commas", f.name)
	}
	base, stepText, hasStep := strings.Cut(elem, "/")
	step := 1
	if hasStep {
		var err error
		if step, err = f.parseStep(stepText); err != nil {
			return 0, err
		}
	}

	lo, hi, err := f.parseRange(base)
	if err != nil {
		return 0, err
	}
	if hasStep && base != "*" && !strings.Contains(base, "-") {
		hi = f.max
	}

	var bits uint64
	for v := lo; v <= hi; v += step {
		bits |= 1 << v
	}
	return bits, nil
}

func (f field) parseStep(text string) (int, error) {
	step, err := strconv.Atoi(text)
	if err != nil || step < 1 || step > f.max {
		return 0, fmt.Errorf("%s field has step %q; use a whole number from 1 to %d after /", f.name, text, f.max)
	}
	return step, nil
}

// parseRange parses "*", a single value or "a-b" into its bounds.
func (f field) parseRange(text string) (lo, hi int, err error) {
	if text == "*" {
		return f.min, f.max, nil
	}
	loText, hiText, isRange := strings.Cut(text, "-")
	if lo, err = f.parseValue(loText); err != nil {
		return 0, 0, err
	}
	if !isRange {
		return lo, lo, nil
	}
	if hi, err = f.parseValue(hiText); err != nil {
		return 0, 0, err
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("%s field has range %q that runs backwards; write the smaller value first, or list the values", f.name, text)
	}
	return lo, hi, nil
}

// parseValue parses a number or, in the month and day-of-week fields, a
// three-letter name in any case.
func (f field) parseValue(text string) (int, error) {
	if v, ok := f.names[strings.ToUpper(text)]; ok {
		return v, nil
	}
	v, err := strconv.Atoi(text)
	if err != nil || strings.HasPrefix(text, "+") || v < f.min || v > f.max {
		return 0, f.badValue(text)
	}
	return v, nil
}

func (f field) badValue(text string) error {
	if text == "?" {
		return fmt.Errorf("%s field cannot contain ?: only day-of-month or day-of-week can, alone", f.name)
	}
	want := fmt.Sprintf("a number from %d to %d", f.min, f.max)
	switch f.name {
	case monthField.name:
		want += " or JAN-DEC"
	case dowField.name:
		want += " or SUN-SAT, with SUN = 1"
	}
	return fmt.Errorf("%s field has invalid value %q; use %s", f.name, text, want)
}
