package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// Secrets. `cairnctl secrets set NAME` reads the value from stdin (or --from-file), never
// from argv — the command line of every process is visible to every user of the machine —
// and never prints it. One trailing newline is dropped (echo, here-strings and most editors
// add one) unless --keep-newline.

// stdin is what `secrets set` reads; tests replace it.
var stdin io.Reader = os.Stdin

// maxSecretInput bounds what `secrets set` reads: the API's limit (64 KiB) and a newline.
const maxSecretInput = 64<<10 + 2

func cmdSecrets(e *env, args []string) int {
	verb, args, code, ok := subcommand(e, "secrets", args, "set", "list", "delete", "reseal")
	if !ok {
		return code
	}
	fs := newFlags(e, "secrets")
	var fromFile *string
	var keepNewline *bool
	if verb == "set" {
		fromFile = fs.String("from-file", "", "read the value from this file instead of stdin")
		keepNewline = fs.Bool("keep-newline", false, "keep a trailing newline of the value (dropped by default)")
	}
	r, pos, code, ok := parseRemote(e, "secrets", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	switch verb {
	case "list", "reseal":
		if len(pos) != 0 {
			return usageError(e, "secrets", "%s takes no arguments", verb)
		}
	default:
		if len(pos) != 1 {
			if verb == "set" && len(pos) > 1 {
				return usageError(e, "secrets", "set takes the secret's name only: the value is read from stdin or --from-file, never from the command line")
			}
			return usageError(e, "secrets", "%s wants one secret name", verb)
		}
	}
	client := cairnv1.NewSecretServiceClient(r.conn)
	ctx, cancel := r.ctx()
	defer cancel()
	ns := r.ns()
	switch verb {
	case "set":
		value, err := readSecretValue(*fromFile, *keepNewline)
		if err != nil {
			fmt.Fprintf(e.stderr, "cairnctl secrets set: %v\n", err)
			return ExitUsage
		}
		resp, err := client.SetSecret(ctx, &cairnv1.SetSecretRequest{Namespace: ns, Name: pos[0], Value: value})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		what := "replaced"
		if resp.GetCreated() {
			what = "created"
		}
		fmt.Fprintf(e.stdout, "secret %s %s (sealed under key %s)\n", inNS(ns, resp.GetSecret().GetName()), what, resp.GetSecret().GetKeyId())
	case "list":
		var all []*cairnv1.Secret
		req := &cairnv1.ListSecretsRequest{Namespace: ns}
		for {
			resp, err := client.ListSecrets(ctx, req)
			if err != nil {
				return r.fail(err)
			}
			all = append(all, resp.GetSecrets()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if *r.asJSON {
			r.printJSON(&cairnv1.ListSecretsResponse{Secrets: all})
			return ExitOK
		}
		rows := make([][]string, 0, len(all))
		for _, s := range all {
			rows = append(rows, []string{s.GetName(), s.GetKeyId(), when(s.GetUpdatedAt()), dash(s.GetUpdatedBy()), when(s.GetCreatedAt())})
		}
		table(e.stdout, "SECRET\tKEY\tUPDATED\tBY\tCREATED", rows)
	case "delete":
		resp, err := client.DeleteSecret(ctx, &cairnv1.DeleteSecretRequest{Namespace: ns, Name: pos[0]})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		fmt.Fprintf(e.stdout, "secret %s deleted\n", inNS(ns, pos[0]))
	case "reseal":
		resp, err := client.ResealSecrets(ctx, &cairnv1.ResealSecretsRequest{})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		fmt.Fprintf(e.stdout, "%d secret(s) resealed; every secret is now sealed under key %s\n", resp.GetResealed(), resp.GetActiveKeyId())
	}
	return ExitOK
}

// readSecretValue reads a secret's value from file, or from stdin when file is empty; a
// terminal is refused (what is typed would show on the screen and could end up in a
// recording). One trailing newline (\n or \r\n) is dropped unless keepNewline.
func readSecretValue(file string, keepNewline bool) (string, error) {
	var src io.Reader = stdin
	what := "stdin"
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return "", err
		}
		defer f.Close()
		src, what = f, file
	} else if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return "", errors.New("stdin is a terminal: pipe the value in (printf %s \"$VALUE\" | cairnctl secrets set NAME) or use --from-file FILE; " +
				"the value is never taken from the command line")
		}
	}
	data, err := io.ReadAll(io.LimitReader(src, maxSecretInput+1))
	if err != nil {
		return "", fmt.Errorf("read the value from %s: %w", what, err)
	}
	if len(data) > maxSecretInput {
		return "", fmt.Errorf("the value read from %s is longer than %d bytes, the limit", what, maxSecretInput-2)
	}
	v := string(data)
	if !keepNewline {
		if t, ok := strings.CutSuffix(v, "\r\n"); ok {
			v = t
		} else {
			v = strings.TrimSuffix(v, "\n")
		}
	}
	if v == "" {
		return "", fmt.Errorf("no value read from %s", what)
	}
	return v, nil
}
