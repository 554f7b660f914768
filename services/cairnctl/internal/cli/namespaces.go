package cli

import (
	"fmt"
	"os"
	"strings"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
)

// Namespaces. Every cluster command about workflows, runs, attempts and dead letters acts in
// one namespace: --namespace/-n (after the command, or before it: cairnctl -n team-a runs
// list), else CAIRN_NAMESPACE, else DefaultNamespace. workers and cluster are cluster-wide
// and ignore it.

// DefaultNamespace is the namespace of requests that name none.
const DefaultNamespace = "default"

// defaultNamespace is --namespace's default: a leading -n, else CAIRN_NAMESPACE, else
// DefaultNamespace.
func defaultNamespace(e *env) string {
	if e.namespace != "" {
		return e.namespace
	}
	if ns := os.Getenv("CAIRN_NAMESPACE"); ns != "" {
		return ns
	}
	return DefaultNamespace
}

// ns is the namespace the command acts in.
func (r *remote) ns() string {
	if r.namespace == nil || *r.namespace == "" {
		return DefaultNamespace
	}
	return *r.namespace
}

// inNS names a workflow for people: the bare name in the default namespace, ns/name in
// another.
func inNS(ns, name string) string {
	if ns == "" || ns == DefaultNamespace {
		return name
	}
	return ns + "/" + name
}

// leadingNamespace consumes a --namespace/-n given before the command (-n NS, -n=NS,
// --namespace NS, --namespace=NS) into e.namespace and returns the remaining arguments.
func leadingNamespace(e *env, args []string) ([]string, int, bool) {
	for len(args) > 0 {
		a := args[0]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || (name != "n" && name != "namespace") {
			return args, 0, true
		}
		if !hasValue {
			if len(args) < 2 {
				fmt.Fprintf(e.stderr, "cairnctl: %s needs a namespace name\n", a)
				return nil, ExitUsage, false
			}
			value, args = args[1], args[1:]
		}
		if value == "" {
			fmt.Fprintf(e.stderr, "cairnctl: %s needs a namespace name\n", a)
			return nil, ExitUsage, false
		}
		e.namespace = value
		args = args[1:]
	}
	return args, 0, true
}

func cmdNamespaces(e *env, args []string) int {
	verb, args, code, ok := subcommand(e, "namespaces", args, "create", "list", "get", "delete")
	if !ok {
		return code
	}
	fs := newFlags(e, "namespaces")
	var description *string
	if verb == "create" {
		description = fs.String("description", "", "what the namespace is for")
	}
	r, pos, code, ok := parseRemote(e, "namespaces", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	if verb == "list" && len(pos) != 0 {
		return usageError(e, "namespaces", "list takes no arguments")
	}
	if verb != "list" && len(pos) != 1 {
		return usageError(e, "namespaces", "%s wants one namespace name", verb)
	}
	client := cairnv1.NewNamespaceServiceClient(r.conn)
	ctx, cancel := r.ctx()
	defer cancel()
	switch verb {
	case "create":
		resp, err := client.CreateNamespace(ctx, &cairnv1.CreateNamespaceRequest{Namespace: pos[0], Description: *description})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		fmt.Fprintf(e.stdout, "namespace %s created\n", resp.GetNamespace().GetName())
	case "list":
		var all []*cairnv1.Namespace
		req := &cairnv1.ListNamespacesRequest{}
		for {
			resp, err := client.ListNamespaces(ctx, req)
			if err != nil {
				return r.fail(err)
			}
			all = append(all, resp.GetNamespaces()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if *r.asJSON {
			r.printJSON(&cairnv1.ListNamespacesResponse{Namespaces: all})
			return ExitOK
		}
		rows := make([][]string, 0, len(all))
		for _, n := range all {
			rows = append(rows, []string{n.GetName(), when(n.GetCreatedAt()), dash(n.GetDescription())})
		}
		table(e.stdout, "NAMESPACE\tCREATED\tDESCRIPTION", rows)
	case "get":
		resp, err := client.GetNamespace(ctx, &cairnv1.GetNamespaceRequest{Namespace: pos[0]})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		n := resp.GetNamespace()
		fmt.Fprintf(e.stdout, "namespace %s, created %s\n", n.GetName(), when(n.GetCreatedAt()))
		if n.GetDescription() != "" {
			fmt.Fprintln(e.stdout, n.GetDescription())
		}
	case "delete":
		resp, err := client.DeleteNamespace(ctx, &cairnv1.DeleteNamespaceRequest{Namespace: pos[0]})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		fmt.Fprintf(e.stdout, "namespace %s deleted\n", pos[0])
	}
	return ExitOK
}
