package dag

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Hash returns the hex SHA-256 of a workflow file as submitted: identical bytes, same version.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// ParseFile reads and parses the file at path with DefaultLimits. Problems in the file are
// reported as an ErrorList naming path; a file that cannot be read gives a wrapped *os.PathError.
func ParseFile(path string) (*Workflow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read workflow: %w", err)
	}
	defer f.Close()
	lim := DefaultLimits()
	// Read one byte past the limit so Parse reports an oversized file without reading all of it.
	data, err := io.ReadAll(io.LimitReader(f, int64(lim.MaxFileBytes)+1))
	if err != nil {
		return nil, fmt.Errorf("read workflow %s: %w", path, err)
	}
	return Parse(path, data, lim)
}

// Parse decodes and validates one workflow file. filename is used only in error messages. On
// failure the error is an ErrorList holding every problem found (up to Limits.MaxErrors), sorted
// by position; on success the workflow is valid: every check described in the package
// documentation passed, and its Graph is acyclic.
func Parse(filename string, data []byte, limits Limits) (*Workflow, error) {
	if filename == "" {
		filename = "<input>"
	}
	p := &parser{file: filename, lim: limits.withDefaults(), suggestBudget: suggestBudget}
	wf := p.parse(data)
	if len(p.errs) > 0 {
		p.errs.sortByPosition()
		return nil, p.errs
	}
	return wf, nil
}

// suggestBudget bounds the work of the "did you mean" searches of one Parse, in edit-distance
// cells: enough for dozens of typos among thousands of ids, and a few tens of milliseconds at most.
const suggestBudget = 20_000_000

// parser holds the state of one Parse call.
type parser struct {
	file          string
	lim           Limits
	errs          ErrorList
	full          bool     // MaxErrors reached: stop collecting
	suggestBudget int      // "did you mean" work left, see suggest
	measured      bool     // the tree is known to pass measure
	secrets       []string // secret names the task being decoded references, see templated

	depStrs  []string     // see depSlices
	depNodes []*yaml.Node // see depSlices
}

// where is the context of a problem: a task (idx >= 0) or the workflow itself (idx < 0).
type where struct {
	task string
	idx  int
}

var atWorkflow = where{idx: -1}

// fpath names a field lazily, so the happy path builds no strings: name, name[idx] or name.key.
type fpath struct {
	name string
	idx  int // element index, or -1
	key  string
}

func field(name string) fpath { return fpath{name: name, idx: -1} }

func (f fpath) at(i int) fpath     { return fpath{name: f.name, idx: i} }
func (f fpath) dot(k string) fpath { return fpath{name: f.name, idx: -1, key: k} }
func (f fpath) sub(s string) fpath { return field(f.String() + "." + s) }
func (f fpath) String() string {
	switch {
	case f.idx >= 0:
		return f.name + "[" + strconv.Itoa(f.idx) + "]"
	case f.key != "":
		return f.name + "." + f.key
	}
	return f.name
}

// add records a problem at node n (nil: no position).
func (p *parser) add(n *yaml.Node, kind error, w where, f fpath, format string, args ...any) {
	if p.full {
		return
	}
	e := &Error{File: p.file, TaskID: w.task, Msg: fmt.Sprintf(format, args...), Kind: kind}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	if fs := f.String(); w.idx >= 0 {
		e.Field = "tasks[" + strconv.Itoa(w.idx) + "]"
		if fs != "" {
			e.Field += "." + fs
		}
	} else {
		e.Field = fs
	}
	if len(p.errs) >= p.lim.MaxErrors {
		p.full = true
		e.Msg = fmt.Sprintf("too many errors (more than %d); stopping", p.lim.MaxErrors)
		e.Kind, e.TaskID, e.Field = ErrLimit, "", ""
	}
	p.errs = append(p.errs, e)
}

// invalid records an ErrInvalid problem whose message starts with the field name.
func (p *parser) invalid(n *yaml.Node, w where, f fpath, format string, args ...any) {
	p.add(n, ErrInvalid, w, f, "%s: %s", f, fmt.Sprintf(format, args...))
}

func (p *parser) suggest(s string, candidates []string) string {
	return suggest(s, candidates, &p.suggestBudget)
}

// parse runs every stage that the earlier ones allow and returns the workflow, which is only
// meaningful when no problem was recorded.
func (p *parser) parse(data []byte) *Workflow {
	if len(data) > p.lim.MaxFileBytes {
		p.add(nil, ErrLimit, atWorkflow, fpath{idx: -1}, "file is larger than the limit of %d bytes", p.lim.MaxFileBytes)
		return nil
	}
	root := p.yaml(data)
	if root == nil || (!p.measured && !p.measure(root)) {
		return nil
	}
	return p.workflow(root)
}

// Test hooks: tests turn the fast path off to compare results, and check every tree it builds.
var (
	fastYAMLEnabled = true
	fastYAMLCheck   func(data []byte, doc *yaml.Node, st fastStats)
)

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yaml parses data into a node tree, requiring exactly one document. Files in the plain subset of
// YAML that fastYAML understands skip yaml.v3; it builds the same tree.
func (p *parser) yaml(data []byte) *yaml.Node {
	if fastYAMLEnabled {
		if doc, st, ok := fastYAML(data); ok {
			if fastYAMLCheck != nil {
				fastYAMLCheck(data, doc, st)
			}
			// measure would walk the tree to find what fastYAML already counted.
			p.measured = st.nodes <= p.lim.MaxNodes && st.depth <= p.lim.MaxDepth
			return doc
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(dec, &doc); err != nil {
		if err == io.EOF {
			p.add(nil, ErrInvalid, atWorkflow, fpath{idx: -1}, "file is empty: a workflow needs at least name: and tasks:")
		} else {
			p.syntax(err, data)
		}
		return nil
	}
	var extra yaml.Node
	switch err := decodeNode(dec, &extra); {
	case err == io.EOF:
	case err != nil:
		p.syntax(err, nil) // an error in a second document: its line is not looked for
		return nil
	default:
		p.add(&extra, ErrInvalid, atWorkflow, fpath{idx: -1}, "a second YAML document starts here; a workflow file holds exactly one")
		return nil
	}
	return &doc
}

// decodeNode calls the YAML decoder, turning a panic inside it into an error: a hostile file must
// not bring down the process that validates it.
func decodeNode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: internal error: %v", r)
		}
	}()
	return dec.Decode(n)
}

func (p *parser) syntax(err error, data []byte) {
	e := &Error{File: p.file, Msg: err.Error(), Kind: ErrSyntax}
	if m := yamlLine.FindStringSubmatch(e.Msg); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Msg = "YAML syntax: " + m[2]
		if data != nil {
			if line := syntaxLine(data, m[2]); line > 0 {
				e.Line = line
			}
		}
	} else if len(e.Msg) > 6 && e.Msg[:6] == "yaml: " {
		e.Msg = "YAML syntax: " + e.Msg[6:]
	}
	p.errs = append(p.errs, e)
}

// syntaxLine finds the line a YAML syntax error is on. yaml.v3 reports the line of the
// parser's context, and for parser (not scanner) errors that line is 0-based: errors land a
// line early (go-yaml issue 205). The first line at which the file, cut after that line,
// fails with the same problem is where the problem is; a binary search over the line count
// finds it with O(log lines) parses. 0 means no better answer.
func syntaxLine(data []byte, problem string) int {
	ends := []int{} // ends[k] is the offset just past line k+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	fails := func(k int) bool { // does the file cut after line k fail with the same problem?
		dec := yaml.NewDecoder(bytes.NewReader(data[:ends[k-1]]))
		var n yaml.Node
		err := decodeNode(dec, &n)
		if err == nil || err == io.EOF {
			return false
		}
		m := yamlLine.FindStringSubmatch(err.Error())
		return m != nil && m[2] == problem
	}
	lo, hi := 1, len(ends) // invariant: the answer is in [lo, hi]
	if hi == 0 || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// measure walks the whole tree once, following aliases, and fails if the tree is deeper than
// MaxDepth, expands to more than MaxNodes nodes (which stops alias bombs, self-referencing anchors
// included), or uses an explicit tag other than the core ones. Only a tree that passes is decoded.
func (p *parser) measure(root *yaml.Node) bool {
	type item struct {
		n     *yaml.Node
		depth int
	}
	stack := []item{{root, 0}}
	count := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := it.n
		if count++; count > p.lim.MaxNodes {
			p.add(n, ErrLimit, atWorkflow, fpath{idx: -1}, "document expands to more than %d YAML nodes (aliases count each time they are used)", p.lim.MaxNodes)
			return false
		}
		if it.depth > p.lim.MaxDepth {
			p.add(n, ErrLimit, atWorkflow, fpath{idx: -1}, "nesting is deeper than the limit of %d levels", p.lim.MaxDepth)
			return false
		}
		if n.Style&yaml.TaggedStyle != 0 {
			switch n.Tag {
			case "!!str", "!!int", "!!float", "!!bool", "!!null", "!!map", "!!seq":
			default:
				p.add(n, ErrInvalid, atWorkflow, fpath{idx: -1}, "YAML tag %s is not supported", n.Tag)
				return false
			}
		}
		switch n.Kind {
		case yaml.AliasNode:
			if n.Alias == nil {
				p.add(n, ErrSyntax, atWorkflow, fpath{idx: -1}, "alias *%s refers to no anchor", n.Value)
				return false
			}
			stack = append(stack, item{n.Alias, it.depth})
		case yaml.DocumentNode:
			for _, c := range n.Content {
				stack = append(stack, item{c, it.depth})
			}
		default:
			for _, c := range n.Content {
				stack = append(stack, item{c, it.depth + 1})
			}
		}
	}
	return true
}

// resolve follows aliases. measure has already bounded them.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names what a node holds, for type errors.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.Tag {
		case "!!null":
			return "null"
		case "!!str":
			return "the string " + strconv.Quote(v)
		case "!!int":
			return "the integer " + v
		case "!!float":
			return "the number " + v
		case "!!bool":
			return "the boolean " + v
		case "!!timestamp":
			return "the timestamp " + v
		}
		return "the " + n.Tag + " " + v
	}
	return "nothing"
}

// kv is one key and its value.
type kv struct{ k, v *yaml.Node }

// fields reads a mapping with a fixed set of keys: known[i]'s entry lands in out[i]. Unknown and
// duplicate keys are problems; out entries of absent keys are zero. ok is false if n is not a
// mapping.
func (p *parser) fields(n *yaml.Node, w where, f fpath, what string, known []string, out []kv) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		if f.name == "" {
			p.add(n, ErrInvalid, w, f, "%s must be a mapping, got %s", what, describe(n))
		} else {
			p.invalid(n, w, f, "expected %s (a mapping), got %s", what, describe(n))
		}
		return false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		key, ok := p.key(k, w, f)
		if !ok {
			continue
		}
		j := 0
		for j < len(known) && known[j] != key {
			j++
		}
		if j == len(known) {
			p.add(k, ErrInvalid, w, f.sub(key), "unknown field %q in %s%s", key, what, p.suggest(key, known))
			continue
		}
		if out[j].k != nil {
			p.add(k, ErrInvalid, w, f.sub(key), "duplicate field %q in %s (first set at line %d)", key, what, out[j].k.Line)
			continue
		}
		out[j] = kv{k, v}
	}
	return true
}

// key reads a mapping key, which must be a plain string.
func (p *parser) key(k *yaml.Node, w where, f fpath) (string, bool) {
	if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
		p.add(k, ErrInvalid, w, f, "YAML merge keys (<<) are not supported; write the fields out, or use an alias as a whole value")
		return "", false
	}
	if k.Kind != yaml.ScalarNode || k.Tag == "!!null" {
		p.add(k, ErrInvalid, w, f, "a mapping key must be a string, got %s", describe(k))
		return "", false
	}
	return k.Value, true
}

// entries reads a mapping with user-chosen string keys (params, env, headers), rejecting
// duplicates and more than MaxEntries entries.
func (p *parser) entries(n *yaml.Node, w where, f fpath, what string) []kv {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.invalid(n, w, f, "expected a mapping of %s, got %s", what, describe(n))
		return nil
	}
	if len(n.Content)/2 > p.lim.MaxEntries {
		p.add(n, ErrLimit, w, f, "%s: more than %d entries", f, p.lim.MaxEntries)
		return nil
	}
	out := make([]kv, 0, len(n.Content)/2)
	var seen map[string]int
	if len(n.Content) > 32 {
		seen = make(map[string]int, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		key, ok := p.key(k, w, f)
		if !ok {
			continue
		}
		first := -1
		if seen != nil {
			if j, dup := seen[key]; dup {
				first = j
			} else {
				seen[key] = len(out)
			}
		} else {
			for j := range out {
				if out[j].k.Value == key {
					first = j
					break
				}
			}
		}
		if first >= 0 {
			p.add(k, ErrInvalid, w, f.dot(key), "%s: duplicate key %q (first set at line %d)", f, key, out[first].k.Line)
			continue
		}
		out = append(out, kv{k, v})
	}
	return out
}

// str reads a string scalar of at most max bytes.
func (p *parser) str(n *yaml.Node, w where, f fpath, max int) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.invalid(n, w, f, "expected a string, got %s", describe(n))
		return "", false
	}
	if len(n.Value) > max {
		p.add(n, ErrLimit, w, f, "%s: longer than the limit of %d bytes", f, max)
		return "", false
	}
	return n.Value, true
}

// text reads a value that is used as text whatever its YAML type (an argv element, an env, header
// or param value): any non-null scalar, taken exactly as written, so `port: 0080` stays "0080".
func (p *parser) text(n *yaml.Node, w where, f fpath, max int) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.invalid(n, w, f, "expected a string, got %s", describe(n))
		return "", false
	}
	if len(n.Value) > max {
		p.add(n, ErrLimit, w, f, "%s: longer than the limit of %d bytes", f, max)
		return "", false
	}
	return n.Value, true
}

// integer reads an integer in [lo, hi].
func (p *parser) integer(n *yaml.Node, w where, f fpath, lo, hi int) (int, bool) {
	n = resolve(n)
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		p.invalid(n, w, f, "expected an integer, got %s", describe(n))
		return 0, false
	}
	if v < lo || v > hi {
		p.invalid(n, w, f, "%d is out of range [%d, %d]", v, lo, hi)
		return 0, false
	}
	return v, true
}

// seq reads a list of at most max elements.
func (p *parser) seq(n *yaml.Node, w where, f fpath, what string, max int) ([]*yaml.Node, bool) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.invalid(n, w, f, "expected a list of %s, got %s", what, describe(n))
		return nil, false
	}
	if len(n.Content) > max {
		p.add(n, ErrLimit, w, f, "%s: more than %d entries", f, max)
		return nil, false
	}
	return n.Content, true
}
