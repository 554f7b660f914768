package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// The cluster commands talk to a gateway over its gRPC API (the generated client). Where and
// how comes from the client configuration (config.go): the file (--config, CAIRN_CONFIG,
// .cairn/cairnctl.json, the XDG directory), then CAIRN_ADDR / CAIRN_CA_FILE / CAIRN_TOKEN,
// then --addr / --ca-file; the address defaults to DefaultAddr. With a CA, the connection is
// TLS. Every command prints a table by default and the API's JSON (proto field names, enums
// as strings) with --json.

// DefaultAddr is the gateway's default gRPC address.
const DefaultAddr = "127.0.0.1:7070"

// requestTimeout bounds each unary call.
const requestTimeout = 30 * time.Second

var workflowNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,127}$`)

// remote is a cluster command's connection and output settings.
type remote struct {
	e         *env
	name      string // command name, for messages
	addr      *string
	caFile    *string
	config    *string
	asJSON    *bool
	namespace *string // see ns()
	conn      *grpc.ClientConn
}

// remoteFlags adds --addr, --ca-file, --config, --json and --namespace (-n) to fs.
func remoteFlags(e *env, name string, fs *flag.FlagSet) *remote {
	r := &remote{
		e: e, name: name,
		addr:   fs.String("addr", "", "gateway gRPC address (env CAIRN_ADDR; default: the configuration file's, else "+DefaultAddr+")"),
		caFile: fs.String("ca-file", "", "CA the gateway's certificate must chain to; talk TLS (env CAIRN_CA_FILE)"),
		config: fs.String("config", "", "client configuration file (env CAIRN_CONFIG; default .cairn/cairnctl.json, then $XDG_CONFIG_HOME/cairn/cairnctl.json)"),
		asJSON: fs.Bool("json", false, "print the API's JSON instead of a table"),
	}
	r.namespace = fs.String("namespace", defaultNamespace(e), "namespace of the workflows, runs and dead letters (env CAIRN_NAMESPACE)")
	fs.StringVar(r.namespace, "n", defaultNamespace(e), "shorthand for --namespace")
	return r
}

func (r *remote) dial() error {
	cfg, file, err := resolveClientConfig(*r.config, *r.addr, *r.caFile)
	if err != nil {
		return err
	}
	*r.addr = cfg.Addr
	opts, err := cfg.dialOptions()
	if err != nil {
		if file != "" {
			return fmt.Errorf("%w (configuration from %s)", err, file)
		}
		return err
	}
	conn, err := grpc.NewClient(cfg.Addr, append(opts, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))...)
	if err != nil {
		return fmt.Errorf("gateway address %q: %w", cfg.Addr, err)
	}
	r.conn = conn
	return nil
}

func (r *remote) close() {
	if r.conn != nil {
		_ = r.conn.Close()
	}
}

func (r *remote) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.e.ctx, requestTimeout)
}

// fail prints err (a gRPC status with its details, or a plain error) on stderr; exit 1.
func (r *remote) fail(err error) int { return r.failIn("", err) }

// failIn is fail for an error about file: validation errors name it.
func (r *remote) failIn(file string, err error) int {
	st, ok := status.FromError(err)
	if !ok {
		fmt.Fprintf(r.e.stderr, "cairnctl %s: %v\n", r.name, err)
		return ExitFail
	}
	msg := st.Message()
	switch {
	case st.Code() == codes.Unavailable && strings.Contains(msg, "connection refused"):
		msg = fmt.Sprintf("cannot reach the gateway at %s (set --addr or CAIRN_ADDR): %s", *r.addr, msg)
	case st.Code() == codes.Unavailable && (strings.Contains(msg, "certificate") || strings.Contains(msg, "tls:") || strings.Contains(msg, "handshake")):
		msg = fmt.Sprintf("TLS with the gateway at %s failed (check --ca-file / CAIRN_CA_FILE): %s", *r.addr, msg)
	case st.Code() == codes.Unauthenticated:
		msg += " (cairnctl sends CAIRN_TOKEN, or the token of its configuration file: --config, CAIRN_CONFIG, " + DevConfigFile + " in the current directory, or $XDG_CONFIG_HOME/cairn/" + ConfigFileName + ")"
	}
	fmt.Fprintf(r.e.stderr, "cairnctl %s: %s: %s\n", r.name, codeName(st.Code()), msg)
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *cairnv1.ValidationError:
			if d.GetFile() == "" {
				d.File = file
			}
			fmt.Fprintf(r.e.stderr, "  %s\n", validationText(d))
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				if line := v.GetField() + ": " + v.GetDescription(); line != msg {
					fmt.Fprintf(r.e.stderr, "  %s\n", line)
				}
			}
		case *errdetails.RetryInfo:
			fmt.Fprintf(r.e.stderr, "  retry in %v\n", d.GetRetryDelay().AsDuration())
		}
	}
	return ExitFail
}

// codeName spells a gRPC code in words: InvalidArgument → "invalid argument".
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

func validationText(v *cairnv1.ValidationError) string {
	var b strings.Builder
	if v.GetFile() != "" {
		b.WriteString(v.GetFile())
	} else {
		b.WriteString("<yaml>")
	}
	if v.GetLine() > 0 {
		fmt.Fprintf(&b, ":%d", v.GetLine())
		if v.GetColumn() > 0 {
			fmt.Fprintf(&b, ":%d", v.GetColumn())
		}
	}
	b.WriteString(": ")
	if v.GetTaskId() != "" {
		fmt.Fprintf(&b, "task %q: ", v.GetTaskId())
	}
	b.WriteString(v.GetMessage())
	return b.String()
}

var jsonOut = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true, Indent: "  "}

// printJSON writes m as the API's JSON.
func (r *remote) printJSON(m proto.Message) {
	data, err := jsonOut.Marshal(m)
	if err != nil {
		fmt.Fprintf(r.e.stderr, "cairnctl %s: encode JSON: %v\n", r.name, err)
		return
	}
	fmt.Fprintf(r.e.stdout, "%s\n", data)
}

// table writes rows under a header, aligned.
func table(w io.Writer, header string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, row := range rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

func enumName[E interface{ String() string }](v E, prefix string) string {
	s := strings.TrimPrefix(v.String(), prefix)
	if s == "UNSPECIFIED" {
		return "-"
	}
	return s
}

func when(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().Local().Format("2006-01-02 15:04:05")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// parseRemote parses a cluster command's flags; it returns the positional arguments, or the
// exit code of a flag error.
func parseRemote(e *env, name string, fs *flag.FlagSet, args []string) (*remote, []string, int, bool) {
	r := remoteFlags(e, name, fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, nil, flagError(err), false
	}
	if err := r.dial(); err != nil {
		fmt.Fprintf(e.stderr, "cairnctl %s: %v\n", name, err)
		return nil, nil, ExitUsage, false
	}
	return r, pos, 0, true
}

// subcommand splits "runs list ..." into the verb and its arguments.
func subcommand(e *env, name string, args []string, verbs ...string) (string, []string, int, bool) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", nil, usageError(e, name, "want a subcommand: %s", strings.Join(verbs, ", ")), false
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], 0, true
		}
	}
	return "", nil, usageError(e, name, "unknown subcommand %q (want %s)", args[0], strings.Join(verbs, ", ")), false
}
