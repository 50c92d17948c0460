package main

import (
	"fmt"
	"time"
)

// timeFlag is a command-line flag holding a time: RFC 3339, or a date
// (YYYY-MM-DD, midnight UTC). The zero value means "not given".
type timeFlag struct{ time.Time }

func (f *timeFlag) String() string {
	if f.IsZero() {
		return ""
	}
	return f.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if t, err = time.Parse(time.DateOnly, s); err != nil {
			return fmt.Errorf("%q is not an RFC 3339 time or a date", s)
		}
	}
	f.Time = t
	return nil
}
