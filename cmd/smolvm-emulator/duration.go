package main

import (
	"fmt"
	"strconv"
	"time"
)

// parseHumanDuration is the subset of humantime::parse_duration that
// exec --timeout goes through (src/cli/parsers.rs 10-16): one or more
// <integer><unit> pairs, spaces allowed between them ("30s", "1m30s",
// "5 min"). Fractions such as "1.5s" are refused, as humantime refuses them.
// The error texts follow humantime 2's Display.
func parseHumanDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("value was empty")
	}
	var total time.Duration
	i := 0
	for i < len(s) {
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i == len(s) {
			break
		}
		start := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if start == i {
			return 0, fmt.Errorf("expected number at %d", start)
		}
		n, err := strconv.ParseInt(s[start:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("number is too large")
		}
		ustart := i
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= 0x80) {
			i++
		}
		unit := s[ustart:i]
		if unit == "" {
			return 0, fmt.Errorf("time unit needed, for example %ssec or %sms", s[start:i], s[start:i])
		}
		mul, ok := humanUnits[unit]
		if !ok {
			return 0, fmt.Errorf("unknown time unit %q, supported units: ns, us, ms, sec, min, hours, days, weeks, months, years (and few variations)", unit)
		}
		total += time.Duration(n) * mul
	}
	return total, nil
}

var humanUnits = map[string]time.Duration{
	"nanos": time.Nanosecond, "nsec": time.Nanosecond, "ns": time.Nanosecond,
	"usec": time.Microsecond, "us": time.Microsecond, "µs": time.Microsecond,
	"millis": time.Millisecond, "msec": time.Millisecond, "ms": time.Millisecond,
	"seconds": time.Second, "second": time.Second, "secs": time.Second, "sec": time.Second, "s": time.Second,
	"minutes": time.Minute, "minute": time.Minute, "mins": time.Minute, "min": time.Minute, "m": time.Minute,
	"hours": time.Hour, "hour": time.Hour, "hrs": time.Hour, "hr": time.Hour, "h": time.Hour,
	"days": 24 * time.Hour, "day": 24 * time.Hour, "d": 24 * time.Hour,
	"weeks": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "w": 7 * 24 * time.Hour,
}
