package dag

import (
	"errors"
	"fmt"
	"strings"
	"text/template"
	"text/template/parse"
)

// Templates are Go text/template strings that see one value, .params, a map of strings. They are
// for substitution, not logic: the only actions allowed are output and if/else, the only functions
// those in allowedFuncs, and every field reference must be .params.NAME (or $.params.NAME) with NAME
// a declared parameter. These rules are checked on the parse tree, so a reference in a branch that
// the default values never take is still caught. The one other function is secret, allowed only
// as {{ secret "name" }} in the fields secrets may go to (see secret.go).

var allowedFuncs = map[string]bool{
	"and": true, "or": true, "not": true, "eq": true, "ne": true, "lt": true, "le": true, "gt": true, "ge": true,
	"len": true, "print": true, "printf": true, "println": true, "html": true, "js": true, "urlquery": true,
}

// hasTemplate reports whether s holds template actions.
func hasTemplate(s string) bool { return strings.Contains(s, "{{") }

var errTooLong = errors.New("rendered value too long")

// cappedWriter collects output and fails once it would exceed max bytes, which stops the template.
type cappedWriter struct {
	buf []byte
	max int
}

func (w *cappedWriter) Write(p []byte) (int, error) {
	if len(w.buf)+len(p) > w.max {
		return 0, errTooLong
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// parseTemplate parses src and, when c is not nil, checks it against the rules above.
func parseTemplate(src string, c *treeChecker) (*template.Template, error) {
	t, err := template.New("t").Option("missingkey=error").Funcs(parseFuncs).Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template: %s", strings.TrimPrefix(err.Error(), "template: t:"))
	}
	if len(t.Templates()) > 1 {
		return nil, errors.New("template: define and block are not allowed")
	}
	if c != nil && t.Tree != nil {
		if err := c.node(t.Tree.Root); err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
	}
	return t, nil
}

// execTemplate renders t with params, failing beyond max bytes of output. Secret references
// become placeholders of sec when allowed (see secretScope).
func execTemplate(t *template.Template, params map[string]string, max int, sec *secretScope, allowed bool) (string, error) {
	w := &cappedWriter{max: max}
	t.Funcs(sec.funcs(allowed))
	if err := t.Execute(w, map[string]any{"params": params}); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("template output is longer than %d bytes", max)
		}
		return "", fmt.Errorf("template: %s", strings.TrimPrefix(err.Error(), "template: t:"))
	}
	return string(w.buf), nil
}

// render expands src if it holds a template.
func render(src string, params map[string]string, max int, sec *secretScope, allowed bool) (string, error) {
	if !hasTemplate(src) {
		return src, nil
	}
	t, err := parseTemplate(src, nil)
	if err != nil {
		return "", err
	}
	return execTemplate(t, params, max, sec, allowed)
}

type treeChecker struct {
	declared func(string) bool
	names    []string
	field    string   // the field checked, for messages
	secrets  bool     // {{ secret "name" }} is allowed in this field
	refs     []string // secret names referenced, in order of appearance
}

func (c *treeChecker) node(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, child := range n.Nodes {
			if err := c.node(child); err != nil {
				return err
			}
		}
	case *parse.TextNode, *parse.CommentNode:
	case *parse.ActionNode:
		if name, ok, err := secretAction(n.Pipe); ok || err != nil {
			if err != nil {
				return err
			}
			return c.secret(name)
		}
		return c.pipe(n.Pipe)
	case *parse.IfNode:
		if err := c.pipe(n.Pipe); err != nil {
			return err
		}
		if err := c.node(n.List); err != nil {
			return err
		}
		return c.node(n.ElseList)
	case *parse.RangeNode:
		return errors.New("range is not allowed; templates only substitute parameters")
	case *parse.WithNode:
		return errors.New("with is not allowed; write .params.NAME")
	case *parse.TemplateNode:
		return errors.New("template and block are not allowed")
	default:
		return fmt.Errorf("%s is not allowed", n)
	}
	return nil
}

// secretAction recognises an action that calls secret: ok is true for exactly
// {{ secret "name" }}; any other use of secret is an error, since what the leader would compute
// from a placeholder (a comparison, an escaping, a length) is not what the value would give.
func secretAction(p *parse.PipeNode) (name string, ok bool, err error) {
	if p == nil || !callsSecret(p) {
		return "", false, nil
	}
	if len(p.Decl) > 0 || len(p.Cmds) != 1 || !isSecretIdent(p.Cmds[0].Args[0]) {
		return "", false, errSecretShape
	}
	if args := p.Cmds[0].Args; len(args) == 2 {
		if s, isStr := args[1].(*parse.StringNode); isStr {
			return s.Text, true, nil
		}
	}
	return "", false, errors.New(`secret takes one argument, the secret's name as a quoted string: {{ secret "name" }} (a name cannot come from a parameter)`)
}

var errSecretShape = errors.New(`secret must be an action of its own, {{ secret "name" }}: not piped, passed to a function or tested in if (the value is only known on the worker, and is inserted as it is)`)

func callsSecret(p *parse.PipeNode) bool {
	for _, cmd := range p.Cmds {
		for _, a := range cmd.Args {
			switch a := a.(type) {
			case *parse.IdentifierNode:
				if a.Ident == secretFunc {
					return true
				}
			case *parse.PipeNode:
				if callsSecret(a) {
					return true
				}
			}
		}
	}
	return false
}

func isSecretIdent(n parse.Node) bool {
	id, ok := n.(*parse.IdentifierNode)
	return ok && id.Ident == secretFunc
}

// secret checks one {{ secret "name" }} and records the name.
func (c *treeChecker) secret(name string) error {
	switch {
	case !validName(name):
		return fmt.Errorf("secret %q: not a valid secret name: use %s", name, nameRule)
	case !c.secrets:
		return fmt.Errorf("secret %q is not allowed in %s: %s", name, c.field, secretFieldsHint)
	}
	c.refs = append(c.refs, name)
	return nil
}

func (c *treeChecker) pipe(p *parse.PipeNode) error {
	if p == nil {
		return nil
	}
	if len(p.Decl) > 0 {
		return errors.New("variables are not allowed; write .params.NAME")
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			if err := c.arg(arg); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *treeChecker) arg(a parse.Node) error {
	switch a := a.(type) {
	case *parse.FieldNode:
		return c.ref(a.Ident, a.String())
	case *parse.VariableNode:
		if a.Ident[0] != "$" || len(a.Ident) == 1 {
			return fmt.Errorf("%s: variables are not allowed; write .params.NAME", a)
		}
		return c.ref(a.Ident[1:], a.String())
	case *parse.IdentifierNode:
		if a.Ident == secretFunc {
			return errSecretShape
		}
		if !allowedFuncs[a.Ident] {
			return fmt.Errorf("function %q is not allowed", a.Ident)
		}
	case *parse.PipeNode:
		return c.pipe(a)
	case *parse.StringNode, *parse.NumberNode, *parse.BoolNode, *parse.NilNode:
	case *parse.DotNode:
		return errors.New("{{ . }} is not allowed; write .params.NAME")
	default:
		return fmt.Errorf("%s is not allowed; write .params.NAME", a)
	}
	return nil
}

func (c *treeChecker) ref(ident []string, text string) error {
	switch {
	case ident[0] != "params":
		return fmt.Errorf("%s: templates see only .params", text)
	case len(ident) == 1:
		return fmt.Errorf("%s: name a parameter, as in .params.NAME", text)
	case len(ident) > 2:
		return fmt.Errorf("%s: parameters are strings and have no fields", text)
	case !c.declared(ident[1]):
		budget := 1 << 20 // names are few (at most MaxEntries)
		return fmt.Errorf("unknown param %q%s", ident[1], suggest(ident[1], c.names, &budget))
	}
	return nil
}
