package dag

import (
	"errors"
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // validate timezone: the same way on every host, whatever its zoneinfo files

	"github.com/robfig/cron/v3"
)

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronReference is the fixed instant a new schedule must fire after (within five years) to be
// accepted, so "0 0 30 2 *" (February 30th) is rejected the same way on every day.
var cronReference = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// parseCron parses a 5-field cron expression (or @hourly, @daily, @weekly, @monthly, @yearly) read
// in loc.
func parseCron(expr string, loc *time.Location) (s *Schedule, err error) {
	trimmed := strings.TrimSpace(expr)
	switch {
	case trimmed == "":
		return nil, errors.New("empty cron expression: write five fields such as \"0 2 * * *\", or leave schedule out")
	case strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ="):
		return nil, fmt.Errorf("%q: set the time zone with timezone:, not inside the expression", expr)
	case strings.HasPrefix(trimmed, "@every"):
		return nil, fmt.Errorf("%q: @every is not supported (its phase would depend on when the scheduler started); use a cron expression", expr)
	}
	defer func() { // the cron library must not be able to crash validation
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid cron expression %q", expr)
		}
	}()
	spec, err := cronParser.Parse(trimmed)
	if err != nil {
		return nil, fmt.Errorf("invalid cron expression %q: %v (want 5 fields: minute hour day-of-month month day-of-week)", expr, err)
	}
	ss, ok := spec.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("invalid cron expression %q", expr)
	}
	ss.Location = loc
	if ss.Next(cronReference).IsZero() {
		return nil, fmt.Errorf("cron expression %q never fires", expr)
	}
	return &Schedule{Expr: expr, Location: loc, spec: ss}, nil
}
