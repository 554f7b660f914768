package envflag

import (
	"fmt"
	"time"
)

// Duration is a time.Duration flag value that rejects negative values.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d *Duration) String() string { return time.Duration(*d).String() }

// Set parses a Go duration such as 10s or 1m30s.
func (d *Duration) Set(v string) error {
	x, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("not a duration (like 10s or 2m): %q", v)
	}
	if x < 0 {
		return fmt.Errorf("duration must not be negative: %q", v)
	}
	*d = Duration(x)
	return nil
}
