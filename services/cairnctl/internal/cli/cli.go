// Package cli implements cairnctl's commands. Each command parses its own flags, writes its
// normal output to stdout and every error to stderr, and returns the process exit code:
// 0 success, 1 the operation failed (invalid file, failed run), 2 a usage error.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdout io.Writer
	stderr io.Writer
	// namespace is a --namespace/-n given before the command (cairnctl -n team-a runs list);
	// empty if none. A flag after the command overrides it.
	namespace string
}

type command struct {
	summary string
	usage   string
	run     func(e *env, args []string) int
}

var commands map[string]command

func init() {
	commands = map[string]command{
		"validate": {"check workflow files; report every problem with its position", "validate [--json] FILE...", cmdValidate},
		"graph":    {"print a workflow's DAG as Graphviz DOT or Mermaid", "graph [--format dot|mermaid] FILE", cmdGraph},
		"run": {"run a workflow on the cluster (or --local: a file, in this process)",
			"run WORKFLOW [-p key=value]... [--idempotency-key K] [--wait] [--json] [--addr ADDR] [-n NS]\n       cairnctl run --local [-p key=value]... [--parallel N] [--egress-allow CIDR,...] [--secrets-file F] [--json] FILE", cmdRun},
		"apply":      {"create or update workflows on the cluster from YAML files", "apply [--json] [--addr ADDR] [-n NS] FILE...", cmdApply},
		"workflows":  {"list workflows, or get one with its DAG", "workflows list|get NAME [--version N] [--json] [--addr ADDR] [-n NS]", cmdWorkflows},
		"runs":       {"list, get, watch, cancel or retry runs", "runs list [--workflow W] [--state S] | get RUN | watch RUN | cancel RUN [--reason R] | retry RUN  [--json] [--addr ADDR] [-n NS]", cmdRuns},
		"attempts":   {"show the attempts of a task of a run, with output and errors", "attempts [--json] [--addr ADDR] [-n NS] RUN TASK", cmdAttempts},
		"dlq":        {"list, inspect or replay dead-lettered tasks", "dlq list [--workflow W] [--run RUN] | get ID | replay ID  [--json] [--addr ADDR] [-n NS]", cmdDLQ},
		"namespaces": {"create, list, get or delete namespaces", "namespaces create NAME [--description D] | list | get NAME | delete NAME  [--json] [--addr ADDR]", cmdNamespaces},
		"secrets":    {"set (value from stdin), list or delete the secrets of a namespace", "secrets set NAME [--from-file F] [--keep-newline] | list | delete NAME | reseal  [--json] [--addr ADDR] [-n NS]", cmdSecrets},
		"workers":    {"list live workers with their load", "workers [--pool P] [--json] [--addr ADDR]", cmdWorkers},
		"cluster":    {"show the scheduler leader, its epoch and the replicas", "cluster [--json] [--addr ADDR]", cmdCluster},
		"dev":        {"run all of Cairn locally: embedded etcd, a local PostgreSQL under .cairn/, scheduler, gateway, workers", "dev [--dir DIR] [--workers N] [--concurrency N] [--grpc-addr A] [--http-addr A] [--ops-addr A]", cmdDev},
		"version":    {"print cairnctl's version", "version", cmdVersion},
		"certs":      {"make a cluster's TLS certificates: a CA, then one certificate per component", certsUsage, cmdCerts},
	}
}

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// Main runs cairnctl with args (without the program name) and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr}
	args, code, ok := leadingNamespace(e, args)
	if !ok {
		return code
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				fmt.Fprintf(stdout, "%s\n\nUsage: cairnctl %s\n", c.summary, c.usage)
				return ExitOK
			}
		}
		printHelp(stdout)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "cairnctl: unknown command %q%s\nRun 'cairnctl help' for the list of commands.\n", args[0], suggest(args[0]))
		return ExitUsage
	}
	return c.run(e, args[1:])
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "cairnctl: the command-line client of Cairn, a distributed DAG task scheduler.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'cairnctl help COMMAND' for a command's usage.")
}

func suggest(name string) string {
	for n := range commands {
		if strings.HasPrefix(n, name) || strings.HasPrefix(name, n) {
			return fmt.Sprintf(" (did you mean %q?)", n)
		}
	}
	return ""
}

// newFlags returns a flag set that reports errors to stderr with the command's usage.
func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("cairnctl "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: cairnctl %s\n", commands[name].usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments (cairnctl run f.yaml -p x=1).
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func usageError(e *env, name, format string, a ...any) int {
	fmt.Fprintf(e.stderr, "cairnctl %s: %s\nUsage: cairnctl %s\n", name, fmt.Sprintf(format, a...), commands[name].usage)
	return ExitUsage
}

func flagError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	return ExitUsage
}

func cmdVersion(e *env, args []string) int {
	fmt.Fprintf(e.stdout, "cairnctl %s\n", Version)
	return ExitOK
}

// paramsFlag collects repeated -p key=value flags.
type paramsFlag map[string]string

func (p paramsFlag) String() string { return "" }

func (p paramsFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", v)
	}
	if _, dup := p[k]; dup {
		return fmt.Errorf("param %q given twice", k)
	}
	p[k] = val
	return nil
}
