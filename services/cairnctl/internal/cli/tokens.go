package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"

	cairnv1 "github.com/cairn-io/cairn/pkg/api/cairn/v1"
	"github.com/cairn-io/cairn/pkg/apitoken"
	"github.com/cairn-io/cairn/pkg/store"
)

func init() {
	commands["tokens"] = command{"create, list or revoke API tokens; make the first admin token",
		"tokens create NAME --scopes S,... --namespaces N,...|* [--ttl D] | list [--all] | revoke ID | whoami | generate | bootstrap --database-url URL [--name N] [--ttl D]  [--json] [--addr ADDR]",
		cmdTokens}
	commands["audit"] = command{"list the audit trail: who changed what, with the outcome (needs admin)",
		"audit [-n NAMESPACE] [--token NAME] [--limit N] [--json] [--addr ADDR]", cmdAudit}
}

func cmdTokens(e *env, args []string) int {
	verb, args, code, ok := subcommand(e, "tokens", args, "create", "list", "revoke", "whoami", "generate", "bootstrap")
	if !ok {
		return code
	}
	switch verb {
	case "generate":
		// A secret for CAIRN_BOOTSTRAP_TOKEN or --bootstrap-token-file; nothing is stored.
		if len(args) != 0 {
			return usageError(e, "tokens", "generate takes no arguments")
		}
		fmt.Fprintln(e.stdout, apitoken.NewSecret())
		return ExitOK
	case "bootstrap":
		return tokensBootstrap(e, args)
	}
	fs := newFlags(e, "tokens")
	var scopes, namespaces csvFlag
	var ttl time.Duration
	all := false
	if verb == "create" {
		fs.Var(&scopes, "scopes", "comma-separated scopes ("+strings.Join(apitoken.ScopeNames(apitoken.AllScopes), ", ")+")")
		fs.Var(&namespaces, "namespaces", "comma-separated namespaces the token may use, or * for all")
		fs.DurationVar(&ttl, "ttl", 0, "lifetime (default 720h, at most 8784h, never beyond your own token's)")
	}
	if verb == "list" {
		fs.BoolVar(&all, "all", false, "include revoked tokens")
	}
	r, pos, code, ok := parseRemote(e, "tokens", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	client := cairnv1.NewAuthServiceClient(r.conn)
	ctx, cancel := r.ctx()
	defer cancel()
	switch verb {
	case "create":
		if len(pos) != 1 {
			return usageError(e, "tokens", "create takes one NAME")
		}
		req := &cairnv1.CreateTokenRequest{Name: pos[0], Scopes: scopes, Namespaces: namespaces}
		if ttl != 0 {
			req.Ttl = durationpb.New(ttl)
		}
		resp, err := client.CreateToken(ctx, req)
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		fmt.Fprintf(r.e.stdout, "%s\n", resp.GetSecret())
		fmt.Fprintf(r.e.stderr, "token %s (%s) created, expires %s: the secret above is shown only now; keep it in a secret store\n",
			resp.GetToken().GetName(), resp.GetToken().GetId(), when(resp.GetToken().GetExpiresAt()))
		return ExitOK
	case "list":
		if len(pos) != 0 {
			return usageError(e, "tokens", "list takes no arguments")
		}
		var out []*cairnv1.Token
		req := &cairnv1.ListTokensRequest{IncludeRevoked: all, PageSize: 500}
		for {
			resp, err := client.ListTokens(ctx, req)
			if err != nil {
				return r.fail(err)
			}
			out = append(out, resp.GetTokens()...)
			if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
				break
			}
		}
		if *r.asJSON {
			r.printJSON(&cairnv1.ListTokensResponse{Tokens: out})
			return ExitOK
		}
		rows := make([][]string, 0, len(out))
		for _, t := range out {
			state := "live"
			switch {
			case t.GetRevokedAt() != nil:
				state = "revoked"
			case t.GetExpiresAt() != nil && t.GetExpiresAt().AsTime().Before(time.Now()):
				state = "expired"
			}
			rows = append(rows, []string{t.GetId(), t.GetName(), state, strings.Join(t.GetNamespaces(), ","),
				strings.Join(t.GetScopes(), ","), when(t.GetExpiresAt()), dash(t.GetCreatedBy())})
		}
		table(r.e.stdout, "ID\tNAME\tSTATE\tNAMESPACES\tSCOPES\tEXPIRES\tCREATED BY", rows)
		return ExitOK
	case "revoke":
		if len(pos) != 1 {
			return usageError(e, "tokens", "revoke takes one token ID (see cairnctl tokens list)")
		}
		resp, err := client.RevokeToken(ctx, &cairnv1.RevokeTokenRequest{Id: pos[0]})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		fmt.Fprintf(r.e.stdout, "token %s (%s) revoked; every gateway refuses it within seconds\n", resp.GetToken().GetName(), resp.GetToken().GetId())
		return ExitOK
	default: // whoami
		if len(pos) != 0 {
			return usageError(e, "tokens", "whoami takes no arguments")
		}
		resp, err := client.WhoAmI(ctx, &cairnv1.WhoAmIRequest{})
		if err != nil {
			return r.fail(err)
		}
		if *r.asJSON {
			r.printJSON(resp)
			return ExitOK
		}
		t := resp.GetToken()
		fmt.Fprintf(r.e.stdout, "token %s (%s)\n  namespaces: %s\n  scopes: %s\n  expires: %s\n", t.GetName(), dash(t.GetId()),
			strings.Join(t.GetNamespaces(), ","), strings.Join(t.GetScopes(), ","), when(t.GetExpiresAt()))
		return ExitOK
	}
}

// tokensBootstrap makes an admin token directly in the database, for a cluster that has no
// token yet (the alternative to the gateway's CAIRN_BOOTSTRAP_TOKEN). The schema must be
// migrated (the scheduler does it at start-up).
func tokensBootstrap(e *env, args []string) int {
	fs := newFlags(e, "tokens")
	dbURL := fs.String("database-url", "", "PostgreSQL URL of the cluster (default: $CAIRN_DATABASE_URL)")
	name := fs.String("name", "admin", "name of the token")
	ttl := fs.Duration("ttl", 24*time.Hour, "lifetime of the token (0: never expires)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return flagError(err)
	}
	if len(pos) != 0 {
		return usageError(e, "tokens", "bootstrap takes no arguments")
	}
	if *dbURL == "" {
		*dbURL = os.Getenv("CAIRN_DATABASE_URL")
	}
	if *dbURL == "" {
		return usageError(e, "tokens", "bootstrap needs --database-url or CAIRN_DATABASE_URL")
	}
	if err := apitoken.CheckName(*name); err != nil {
		return usageError(e, "tokens", "--name: %v", err)
	}
	if *ttl < 0 {
		return usageError(e, "tokens", "--ttl must not be negative")
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, *dbURL)
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl tokens bootstrap: database: %v\n", err)
		return ExitFail
	}
	defer pool.Close()
	g := apitoken.Grants{Scopes: []apitoken.Scope{apitoken.Admin}, Namespaces: []string{apitoken.AllNamespaces}}
	if *ttl > 0 {
		g.ExpiresAt = time.Now().Add(*ttl)
	}
	secret := apitoken.NewSecret()
	t, err := store.New(pool).CreateToken(ctx, store.Token{Name: *name, Grants: g, CreatedBy: "cairnctl"}, apitoken.Hash(secret))
	if err != nil {
		fmt.Fprintf(e.stderr, "cairnctl tokens bootstrap: %v\n", err)
		return ExitFail
	}
	fmt.Fprintln(e.stdout, secret)
	fmt.Fprintf(e.stderr, "admin token %s (%s) created, expires %s: the secret above is shown only now\n",
		t.Name, t.ID, untilTime(t.Grants.ExpiresAt))
	return ExitOK
}

// csvFlag collects comma-separated values, from one or several uses of the flag.
type csvFlag []string

func (l *csvFlag) String() string { return strings.Join(*l, ",") }
func (l *csvFlag) Set(v string) error {
	for _, x := range strings.Split(v, ",") {
		if x = strings.TrimSpace(x); x != "" {
			*l = append(*l, x)
		}
	}
	return nil
}

func untilTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func cmdAudit(e *env, args []string) int {
	fs := newFlags(e, "audit")
	tok := fs.String("token", "", "only events of this token name")
	limit := fs.Int("limit", 50, "at most this many events, newest first")
	r, pos, code, ok := parseRemote(e, "audit", fs, args)
	if !ok {
		return code
	}
	defer r.close()
	if len(pos) != 0 {
		return usageError(e, "audit", "takes no arguments")
	}
	if *limit < 1 {
		return usageError(e, "audit", "--limit must be at least 1")
	}
	// Every namespace's events unless a namespace is asked for (-n, --namespace or
	// CAIRN_NAMESPACE): token operations belong to none.
	ns := ""
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "n" || f.Name == "namespace" {
			ns = *r.namespace
		}
	})
	if os.Getenv("CAIRN_NAMESPACE") != "" {
		ns = *r.namespace
	}
	client := cairnv1.NewAuthServiceClient(r.conn)
	ctx, cancel := r.ctx()
	defer cancel()
	var out []*cairnv1.AuditEvent
	req := &cairnv1.ListAuditEventsRequest{Namespace: ns, TokenName: *tok, PageSize: int32(min(*limit, 500))}
	for len(out) < *limit {
		resp, err := client.ListAuditEvents(ctx, req)
		if err != nil {
			return r.fail(err)
		}
		out = append(out, resp.GetEvents()...)
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	out = out[:min(len(out), *limit)]
	if *r.asJSON {
		r.printJSON(&cairnv1.ListAuditEventsResponse{Events: out})
		return ExitOK
	}
	rows := make([][]string, 0, len(out))
	for _, ev := range out {
		rows = append(rows, []string{when(ev.GetTime()), ev.GetTokenName(), strings.TrimPrefix(ev.GetMethod(), "/cairn.v1."),
			dash(ev.GetNamespace()), dash(ev.GetResource()), ev.GetOutcome()})
	}
	table(r.e.stdout, "TIME\tTOKEN\tMETHOD\tNAMESPACE\tRESOURCE\tOUTCOME", rows)
	return ExitOK
}
