package dag

// Limits bound what Parse accepts, so a hostile or runaway file fails with a clear error instead of
// exhausting memory or CPU. A zero (or negative) field means "use the default".
type Limits struct {
	MaxFileBytes   int // size of the YAML file; default 1 MiB
	MaxTasks       int // tasks in one workflow; default 10,000
	MaxNodes       int // YAML nodes visited, counting every expansion of an alias; default 1,000,000
	MaxDepth       int // nesting depth of the YAML tree; default 32
	MaxStringBytes int // any one string: description, argv element, script, env/header/param value, workdir; default 64 KiB
	MaxURLBytes    int // an http url, before and after rendering; default 8 KiB
	MaxBodyBytes   int // an http body, before and after rendering; default 256 KiB
	MaxEntries     int // items in one list or map (command argv, env, headers, params, expect_status); default 1,000
	MaxRetries     int // retries of one task; default 100
	MaxErrors      int // problems reported before Parse gives up; default 100
}

// DefaultLimits returns the limits used when a field of Limits is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxFileBytes:   1 << 20,
		MaxTasks:       10_000,
		MaxNodes:       1_000_000,
		MaxDepth:       32,
		MaxStringBytes: 64 << 10,
		MaxURLBytes:    8 << 10,
		MaxBodyBytes:   256 << 10,
		MaxEntries:     1_000,
		MaxRetries:     100,
		MaxErrors:      100,
	}
}

// withDefaults fills every zero or negative field from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxFileBytes, d.MaxFileBytes)
	set(&l.MaxTasks, d.MaxTasks)
	set(&l.MaxNodes, d.MaxNodes)
	set(&l.MaxDepth, d.MaxDepth)
	set(&l.MaxStringBytes, d.MaxStringBytes)
	set(&l.MaxURLBytes, d.MaxURLBytes)
	set(&l.MaxBodyBytes, d.MaxBodyBytes)
	set(&l.MaxEntries, d.MaxEntries)
	set(&l.MaxRetries, d.MaxRetries)
	set(&l.MaxErrors, d.MaxErrors)
	return l
}
