package envflag

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
)

// Set is a flag set whose flags also read environment variables.
type Set struct {
	fs      *flag.FlagSet
	env     map[string]string // flag name → variable
	getenv  func(string) (string, bool)
	summary string
}

// New returns a set for the named program. summary is printed at the top of --help.
func New(program, summary string) *Set {
	s := &Set{fs: flag.NewFlagSet(program, flag.ContinueOnError), env: map[string]string{}, getenv: os.LookupEnv, summary: summary}
	s.fs.Usage = func() { s.PrintUsage(s.fs.Output()) }
	return s
}

// FlagSet exposes the underlying flag set.
func (s *Set) FlagSet() *flag.FlagSet { return s.fs }

// SetLookupEnv replaces os.LookupEnv (tests).
func (s *Set) SetLookupEnv(f func(string) (string, bool)) { s.getenv = f }

func (s *Set) bind(name, env string) {
	if env != "" {
		s.env[name] = env
	}
}

// String defines a string flag bound to env.
func (s *Set) String(p *string, name, env, def, usage string) {
	s.fs.StringVar(p, name, def, usage)
	s.bind(name, env)
}

// Int defines an int flag bound to env.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	s.fs.IntVar(p, name, def, usage)
	s.bind(name, env)
}

// Bool defines a bool flag bound to env.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	s.fs.BoolVar(p, name, def, usage)
	s.bind(name, env)
}

// Duration defines a duration flag bound to env.
func (s *Set) Duration(p *Duration, name, env string, def Duration, usage string) {
	*p = def
	s.fs.Var(p, name, usage)
	s.bind(name, env)
}

// List defines a comma-separated list flag bound to env.
func (s *Set) List(p *[]string, name, env string, def []string, usage string) {
	*p = def
	s.fs.Var((*listValue)(p), name, usage)
	s.bind(name, env)
}

// Parse applies environment variables, then the command-line arguments.
func (s *Set) Parse(args []string) error {
	names := make([]string, 0, len(s.env))
	for n := range s.env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		v, ok := s.getenv(s.env[name])
		if !ok {
			continue
		}
		if err := s.fs.Set(name, v); err != nil {
			return fmt.Errorf("environment variable %s=%q: %w", s.env[name], v, err)
		}
	}
	return s.fs.Parse(args)
}

// Args returns the non-flag arguments after Parse.
func (s *Set) Args() []string { return s.fs.Args() }

// PrintUsage writes the help text: each flag, its environment variable and its default.
func (s *Set) PrintUsage(w io.Writer) {
	if s.summary != "" {
		fmt.Fprintf(w, "%s\n\n", s.summary)
	}
	fmt.Fprintf(w, "Usage: %s [flags]\n\nFlags (environment variable in brackets):\n", s.fs.Name())
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	s.fs.VisitAll(func(f *flag.Flag) {
		env := ""
		if e, ok := s.env[f.Name]; ok {
			env = "[" + e + "]"
		}
		def := ""
		if f.DefValue != "" {
			def = " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(tw, "  --%s\t%s\t%s%s\n", f.Name, env, f.Usage, def)
	})
	_ = tw.Flush()
}

type listValue []string

func (l *listValue) String() string { return strings.Join(*l, ",") }

func (l *listValue) Set(v string) error {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	*l = out
	return nil
}
