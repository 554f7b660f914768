package dag

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestMain makes every Parse call of every test (and of the fuzz seed corpora) check the tree the
// fast YAML path built against yaml.v3's: the existing test tables all double as differential
// tests. Benchmarks run without the check.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		fastYAMLCheck = func(data []byte, doc *yaml.Node, st fastStats) {
			if msg := diffFastYAML(data, doc, st); msg != "" {
				panic(fmt.Sprintf("fast YAML path differs from yaml.v3: %s\ninput:\n%s", msg, data))
			}
		}
	}
	os.Exit(m.Run())
}

// referenceTree is what parser.yaml gets from yaml.v3: the first document, and whether a second
// one follows.
func referenceTree(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decodeNode(dec, &doc); err != nil {
		return nil, err
	}
	var extra yaml.Node
	if err := decodeNode(dec, &extra); err != io.EOF {
		return nil, fmt.Errorf("second document or error after the first: %v", err)
	}
	return &doc, nil
}

// diffFastYAML returns "" if doc and st (from fastYAML, or nil to run it) are what yaml.v3 builds
// for data and what measure finds in it, or fastYAML declined; else the first difference.
func diffFastYAML(data []byte, doc *yaml.Node, st fastStats) string {
	if doc == nil {
		var ok bool
		if doc, st, ok = fastYAML(data); !ok {
			return ""
		}
	}
	ref, err := referenceTree(data)
	if err != nil {
		return "fast path accepted input yaml.v3 rejects: " + err.Error()
	}
	if d := diffNodes("doc", doc, ref); d != "" {
		return d
	}
	nodes, depth := treeSize(ref, 0)
	if st.nodes != nodes || st.depth < depth {
		return fmt.Sprintf("fast path counted %d nodes, depth at most %d; the tree has %d nodes, depth %d", st.nodes, st.depth, nodes, depth)
	}
	return ""
}

// treeSize counts nodes and the greatest depth as measure does (a document's child is at its depth).
func treeSize(n *yaml.Node, depth int) (nodes, maxDepth int) {
	nodes, maxDepth = 1, depth
	if n.Kind != yaml.DocumentNode {
		depth++
	}
	for _, c := range n.Content {
		cn, cd := treeSize(c, depth)
		nodes += cn
		maxDepth = max(maxDepth, cd)
	}
	return nodes, maxDepth
}

// diffNodes compares every field but the comments, which nothing in this package reads.
func diffNodes(path string, a, b *yaml.Node) string {
	if a == nil || b == nil {
		if a != b {
			return path + ": one node is nil"
		}
		return ""
	}
	type fields struct {
		Kind         yaml.Kind
		Style        yaml.Style
		Tag, Value   string
		Anchor       string
		Line, Column int
		Alias        bool
		N            int
	}
	fa := fields{a.Kind, a.Style, a.Tag, a.Value, a.Anchor, a.Line, a.Column, a.Alias != nil, len(a.Content)}
	fb := fields{b.Kind, b.Style, b.Tag, b.Value, b.Anchor, b.Line, b.Column, b.Alias != nil, len(b.Content)}
	if fa != fb {
		return fmt.Sprintf("%s: fast %+v, yaml.v3 %+v", path, fa, fb)
	}
	for i := range a.Content {
		if d := diffNodes(fmt.Sprintf("%s[%d]", path, i), a.Content[i], b.Content[i]); d != "" {
			return d
		}
	}
	return ""
}

// fastSnippets are inputs at the edges of the fast path's subset, both sides of each edge.
var fastSnippets = []string{
	"a: b\n",
	"a: b",
	"# c\n\n  # d\na: b # e\n# f\n",
	"  a: b\n  c: d\n",
	"a:\n  b: c\n  d:\n    - e\n    - f: g\n      h: i\n",
	"a:\n- b\n- c\nd: e\n",
	"a:\n- b: c\n  d: e\n- f\n",
	"- a\n- b\n",
	"-   a: b\n    c: d\n",
	"- \n  a: b\n",
	"-\n  - a\n",
	"- - a\n",
	"a: [b, c, 'd', \"e\"]\n",
	"a: []\nb: {}\n",
	"a: [ b , c ]\n",
	"a: [b, [c, d], {e: f}]\n",
	"a: {b: c, d: [e], f: {g: h}}\n",
	"a: [b,]\n",
	"a: [b,,c]\n",
	"a: [b: c]\n",
	"a: {b}\n",
	"a: {b: }\n",
	"a: {b:c}\n",
	"a: [b\n  , c]\n",
	"a: {b: c,\n  d: e}\n",
	"a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: 0x1F\ng: 2026-01-01\nh: .inf\ni: -.5\nj: +1\nk: 0o17\nl: 1_000\nm: No\nn: yes\n",
	"a: [1, 2.5, true, null, ~, -3, 2026-01-01T10:00:00Z]\n",
	"a: <<\n",
	"<<: a\n",
	"a: 'it''s'\nb: \"q\\\"\\\\\\/\\n\\t\\r\"\nc: ''\nd: \"\"\n",
	"a: \"q\\\"\\\\\\n\\t\\r\"\n",
	"a: \"\\x41\"\n",
	"a: \"\\u00e9\"\n",
	"a: 'multi\n  line'\n",
	"a: \"multi\n  line\"\n",
	"a: b\n  c\n",
	"a: b\n\n  c\n",
	"- a\n  b\n",
	"a: b\n    # indented comment\nc: d\n",
	"a:\n  b: c\n # comment at 1\nd: e\n",
	"a:\n  - b\n  # c\nd: e\n",
	"a: b:c\nd: e :f\ng: h#i\nj: k # l\n",
	"a: b: c\n",
	"a: b:\n",
	"a: 'x' y\n",
	"a: [b] c\n",
	"a: [b]#c\n",
	"a: \"b\"#c\n",
	"a: b #c\n",
	"a: # c\n  b: d\n",
	"a:\n",
	"a:\nb: c\n",
	"a:\n  b\n",
	"a: b\n c: d\n",
	"a:\n    b: c\n  d: e\n",
	"a:\n  - b\n - c\n",
	"a: b\na: c\n",
	"a: -b\nc: --d\ne: -1\nf: -.inf\ng: ./x\nh: .\ni: -\n",
	"a: [-b, --c, -1, ./d, .e]\n",
	"a: [-]\n",
	"a: [b c, d  e ]\n",
	"a: b  c  \n",
	"a: $x\nb: (y)\nc: ~z\nd: +q\ne: =r\nf: ;s\ng: ^t\nh: <u\n",
	"a: &x b\nc: *x\n",
	"a: !!str 1\n",
	"a: |\n  b\n",
	"a: >\n  b\n",
	"---\na: b\n",
	"a: b\n---\nc: d\n",
	"a: b\n...\n",
	"%YAML 1.2\n---\na: b\n",
	"? a\n: b\n",
	"\"a\": b\n",
	"'a': b\n",
	"- \"a\": b\n",
	"a b: c\n",
	"a : b\n",
	"a.b/c-d_e: f\n",
	"1: a\ntrue: b\nnull: c\n~: d\n",
	"a:\tb\n",
	"a: b\r\n",
	"a: é\n",
	"\ufeffa: b\n",
	"",
	"\n\n",
	"# only a comment\n",
	"a",
	"[a, b]\n",
	"{a: b}\n",
	"a: {b: [c, {d: e}]}\n",
	"a: b\n  # c\n",
	"a:\n  - b\n\n\n  - c\n",
	"a:\n  -\n    b: c\n",
	"a:\n  - b: c\n\n    d: e\n",
	"a: 'b' # c\n",
	"a: [b, 'c''d', \"e,f\"]\n",
	"a: [\"b\": c]\n",
	"a: {b: c}: d\n",
	"a: ,b\n",
	"a: b,c\n",
	"a: [b,c]\n",
	"a: {b: c,d: e}\n",
	"a: [b #c]\n",
	"a: x#y\n",
	"- a: b\n  - c\n",
	"- a: b\n-c\n",
	"a:\n- b\n-c\n",
	"a: 'x\"y'\nb: \"x'y\"\n",
	"a: \"\\\"\"\n",
	"a: '\\'\n",
	"a: \"\\\\\"\n",
	"a: \"b\\\n",
	"a: \"b\n",
	"a: [b\n",
	"a: {b: c\n",
	"a: [[[[[[b]]]]]]\n",
	"a: ...\nb: ---\n",
	"a: -- \n",
	"a: - b\n",
	"a:  - b\n",
}

// TestFastYAMLMatchesYAML checks the fast path's tree against yaml.v3's for hand-written edge
// cases, the examples and generated workflows, and that the whole Parse result (workflow or every
// error, with positions) is the same with the fast path off.
func TestFastYAMLMatchesYAML(t *testing.T) {
	inputs := map[string][]byte{"design": []byte(designExample)}
	for i, s := range fastSnippets {
		inputs[fmt.Sprintf("snippet%d", i)] = []byte(s)
	}
	for _, f := range exampleFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[f] = data
	}
	for _, shape := range []string{"chain", "wide", "reverse", "cycle"} {
		inputs[shape] = genDAG(shape, 50)
	}
	accepted := 0
	for name, data := range inputs {
		if _, _, ok := fastYAML(data); ok {
			accepted++
		}
		if d := diffFastYAML(data, nil, fastStats{}); d != "" {
			t.Errorf("%s: %s\ninput:\n%s", name, d, data)
			continue
		}
		if msg := compareParse(data); msg != "" {
			t.Errorf("%s: %s", name, msg)
		}
	}
	for _, name := range []string{"chain", "wide", "reverse", "cycle", "../../examples/fanout.yaml"} {
		if _, _, ok := fastYAML(inputs[name]); !ok {
			t.Errorf("%s: the fast path declined it; it should take it", name)
		}
	}
	t.Logf("fast path took %d of %d inputs", accepted, len(inputs))
}

// compareParse runs Parse with and without the fast path, with default and with tight limits, and
// describes any difference.
func compareParse(data []byte) string {
	for _, lim := range []Limits{{MaxTasks: 1000}, {MaxNodes: 12, MaxDepth: 2, MaxEntries: 2, MaxStringBytes: 8}, {MaxDepth: 1}} {
		if msg := compareParseWith(data, lim); msg != "" {
			return fmt.Sprintf("limits %+v: %s", lim, msg)
		}
	}
	return ""
}

func compareParseWith(data []byte, lim Limits) string {
	wf1, err1 := Parse("x.yaml", data, lim)
	fastYAMLEnabled = false
	wf2, err2 := Parse("x.yaml", data, lim)
	fastYAMLEnabled = true
	if fmt.Sprint(err1) != fmt.Sprint(err2) {
		return fmt.Sprintf("errors differ:\nfast: %v\nyaml.v3: %v", err1, err2)
	}
	var l1, l2 ErrorList
	if errors.As(err1, &l1) && errors.As(err2, &l2) && !reflect.DeepEqual(l1, l2) {
		return "error lists differ in a field"
	}
	if !reflect.DeepEqual(wf1, wf2) {
		return "workflows differ"
	}
	return ""
}

// TestFastYAMLFallbackIsComplete checks that fastYAML returns a tree or nothing, never half a one.
func TestFastYAMLFallbackIsComplete(t *testing.T) {
	// Every snippet the fast path declines must be declined, not half-parsed: fastYAML returns
	// either a tree or nothing, and a declined input parses exactly as before.
	for _, s := range fastSnippets {
		if doc, _, ok := fastYAML([]byte(s)); ok == (doc == nil) {
			t.Fatalf("fastYAML(%q) returned ok=%v with doc %v", s, ok, doc)
		}
	}
	if _, _, ok := fastYAML([]byte("a: b\n---\nc: d\n")); ok {
		t.Fatal("a second document must fall back")
	}
}

// FuzzFastYAMLMatchesYAML: whenever the fast path accepts an input, its tree is yaml.v3's, and
// yaml.v3 accepts the input as a single document.
func FuzzFastYAMLMatchesYAML(f *testing.F) {
	for _, s := range fastSnippets {
		f.Add([]byte(s))
	}
	f.Add([]byte(designExample))
	for _, file := range exampleFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(genDAG("wide", 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		if d := diffFastYAML(data, nil, fastStats{}); d != "" {
			t.Fatal(d)
		}
	})
}

// TestFastYAMLScalarTags checks the fast path's tag of plain scalars against yaml.v3 for words
// near the ones yaml.v3 resolves specially, in block and flow context.
func TestFastYAMLScalarTags(t *testing.T) {
	words := []string{
		"true", "True", "TRUE", "tRUE", "truex", "false", "False", "FALSE", "fALSE", "null", "Null", "NULL",
		"nULL", "nil", "~", "~a", "yes", "Yes", "no", "No", "on", "off", "y", "n", "o", "t", "f", "Y", "N",
		"<a", "<<a", "0", "-0", "+0", "-", "--", "-a", ".", "..", ".5", "-.5", "+.5", "1e3", "1E3",
		"0x1F", "0o17", "017", "0b101", "-0b101", "1_000", "1:20", "12:30:45", "2026-01-01",
		"2026-01-01T10:00:00Z", "2026-1-1", ".nan", ".NaN", ".inf", "-.inf", "+.INF", "9223372036854775808",
		"18446744073709551616", "1.", "-1.5e-3", "0.1.2", "1a", "v1", "/x", "$x", "=",
	}
	for _, w := range words {
		for _, src := range []string{"a: " + w + "\n", "a: [" + w + "]\n", w + ": a\n"} {
			if d := diffFastYAML([]byte(src), nil, fastStats{}); d != "" {
				t.Errorf("%q: %s", src, d)
			}
		}
	}
}
