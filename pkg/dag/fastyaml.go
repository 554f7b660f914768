package dag

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// fastYAML builds the node tree of a file written in the plain subset of YAML that workflow files
// use, several times faster than yaml.v3 and with a few large allocations instead of one per node.
// It returns ok=false, and the caller must use yaml.v3, for anything outside that subset or that it
// is not sure about. When it returns ok=true the tree is the one yaml.v3 builds for the same bytes
// (Kind, Tag, Value, Style, Line, Column, Content; comments are dropped, nothing here reads them),
// so validation reports the same problems at the same positions whichever path ran. The
// differential tests and FuzzFastYAMLMatchesYAML hold it to that.
//
// The subset: printable ASCII and newlines only (so a column is a byte offset); no document
// markers, directives, anchors, aliases, tags, block scalars or multi-line scalars; block mappings
// whose keys are plain words; block sequences (also "indentless" under a key); plain,
// single-quoted and double-quoted (simple escapes only) scalars; flow sequences and flow mappings
// written on one line; comments. Empty values (null written as nothing) fall back, so every
// position of a null is yaml.v3's own.
func fastYAML(data []byte) (doc *yaml.Node, st fastStats, ok bool) {
	for _, c := range data {
		if (c < 0x20 && c != '\n') || c > 0x7e {
			return nil, st, false
		}
	}
	p := &fastParser{src: string(data)}
	defer func() {
		if r := recover(); r != nil {
			if r != errFallback {
				panic(r)
			}
			doc, st, ok = nil, fastStats{}, false
		}
	}()
	doc = p.document()
	return doc, fastStats{nodes: p.nodes, depth: max(p.scalarDepth, p.deepest-1)}, true
}

// fastStats are what measure would find in a tree fastYAML built: its node count and an upper
// bound of its depth. The tree has no aliases and no tags.
type fastStats struct{ nodes, depth int }

// errFallback unwinds the fast parser when the input leaves the subset.
var errFallback = &struct{ string }{"fast YAML path: fall back to yaml.v3"}

type fastParser struct {
	src       string
	pos       int // next byte to read
	lineStart int // offset of the current line's first byte
	line      int // 0-based number of the current line
	ind       int // indent of the content line pos is on, after next(); -1 at the end
	depth     int // collections open
	nodes     int // nodes made
	// scalarDepth is the most collections open around a scalar; a collection at depth d (d open
	// including itself) is at most d-1 deep, so max(scalarDepth, deepest-1) bounds measure's depth.
	scalarDepth int
	deepest     int

	slab    []yaml.Node  // nodes are carved from here
	kids    []*yaml.Node // children of the collections being built, as a stack
	ptrs    []*yaml.Node // Content slices are carved from here
	scratch yaml.Node    // for resolving plain scalar tags
	tags    map[string]string
}

const maxFastDepth = 100

func fallback() { panic(errFallback) }

func (p *fastParser) newNode(kind yaml.Kind, tag string, style yaml.Style, value string, line, col int) *yaml.Node {
	if len(p.slab) == 0 {
		p.slab = make([]yaml.Node, max(64, min(4096, len(p.src)/16)))
	}
	if kind == yaml.ScalarNode {
		p.scalarDepth = max(p.scalarDepth, p.depth)
	}
	n := &p.slab[0]
	p.slab = p.slab[1:]
	p.nodes++
	n.Kind, n.Tag, n.Style, n.Value, n.Line, n.Column = kind, tag, style, value, line+1, col+1
	return n
}

// content moves the children above mark off the stack into n.Content.
func (p *fastParser) content(n *yaml.Node, mark int) {
	k := p.kids[mark:]
	if len(k) == 0 {
		p.kids = p.kids[:mark]
		return
	}
	if len(p.ptrs) < len(k) {
		p.ptrs = make([]*yaml.Node, max(len(k), 4096))
	}
	c := p.ptrs[:len(k):len(k)]
	p.ptrs = p.ptrs[len(k):]
	copy(c, k)
	n.Content = c
	p.kids = p.kids[:mark]
}

func (p *fastParser) col() int { return p.pos - p.lineStart }

func (p *fastParser) peek(off int) byte {
	if p.pos+off < len(p.src) {
		return p.src[p.pos+off]
	}
	return 0 // end of input: acts as a line end
}

// blankAt reports whether offset i is a space, a line end or the end of input.
func (p *fastParser) blankAt(i int) bool {
	return i >= len(p.src) || p.src[i] == ' ' || p.src[i] == '\n'
}

// next moves from the start of a line to the first content line at or after it, skipping blank and
// comment-only lines, and leaves pos on its first non-space byte with ind set to its indent (-1 at
// the end of input).
func (p *fastParser) next() {
	for {
		if p.pos >= len(p.src) {
			p.ind = -1
			return
		}
		p.lineStart = p.pos
		if p.src[p.pos] == '%' || strings.HasPrefix(p.src[p.pos:], "---") || strings.HasPrefix(p.src[p.pos:], "...") {
			fallback()
		}
		p.spaces()
		if p.pos < len(p.src) && p.src[p.pos] != '\n' && p.src[p.pos] != '#' {
			p.ind = p.pos - p.lineStart
			return
		}
		p.skipLine()
	}
}

// skipLine moves past the next newline (or to the end of input).
func (p *fastParser) skipLine() {
	i := strings.IndexByte(p.src[p.pos:], '\n')
	if i < 0 {
		p.pos = len(p.src)
	} else {
		p.pos += i + 1
	}
	p.line++
}

// endLine checks that nothing but spaces and a comment follows on the line, then moves to the
// next content line.
func (p *fastParser) endLine() {
	p.spaces()
	switch c := p.peek(0); {
	case p.pos >= len(p.src):
	case c == '\n':
	case c == '#' && p.pos > 0 && p.src[p.pos-1] == ' ':
	default:
		fallback()
	}
	p.skipLine()
	p.next()
}

func (p *fastParser) document() *yaml.Node {
	p.next()
	if p.ind < 0 {
		fallback() // empty file: yaml.v3 reports it
	}
	doc := p.newNode(yaml.DocumentNode, "", 0, "", p.line, p.col())
	root := p.blockNode()
	if p.ind >= 0 {
		fallback()
	}
	p.kids = append(p.kids, root)
	p.content(doc, 0)
	return doc
}

// blockNode parses the block collection starting at pos, which is the first content of its line.
func (p *fastParser) blockNode() *yaml.Node {
	if p.peek(0) == '-' && p.blankAt(p.pos+1) {
		return p.blockSeq(false)
	}
	if p.keyEnd() > 0 {
		return p.blockMap()
	}
	fallback()
	return nil
}

// keyEnd returns the offset of the ':' ending a simple block key at pos, or 0 if pos does not start
// one. Keys are restricted to a conservative character set.
func (p *fastParser) keyEnd() int {
	i := p.pos
	if i >= len(p.src) || !keyStart(p.src[i]) {
		return 0
	}
	for i < len(p.src) && keyByte(p.src[i]) {
		i++
	}
	if i >= len(p.src) || p.src[i] != ':' || !p.blankAt(i+1) || i-p.pos > 1000 {
		return 0
	}
	return i
}

func keyStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func keyByte(c byte) bool { return keyStart(c) || c == '-' || c == '.' || c == '/' }

func (p *fastParser) enter() {
	if p.depth++; p.depth > maxFastDepth {
		fallback()
	}
	p.deepest = max(p.deepest, p.depth)
}

// blockMap parses a block mapping whose first key is at pos.
func (p *fastParser) blockMap() *yaml.Node {
	p.enter()
	col := p.col()
	n := p.newNode(yaml.MappingNode, "!!map", 0, "", p.line, col)
	mark := len(p.kids)
	for {
		end := p.keyEnd()
		if end == 0 {
			fallback()
		}
		p.kids = append(p.kids, p.plain(p.src[p.pos:end], p.line, col))
		p.pos = end + 1
		p.spaces()
		if c := p.peek(0); c == '\n' || c == '#' || p.pos >= len(p.src) {
			// The value is on the next lines.
			p.endLine()
			switch {
			case p.ind > col:
				p.kids = append(p.kids, p.blockNode())
			case p.ind == col && p.peek(0) == '-' && p.blankAt(p.pos+1):
				p.kids = append(p.kids, p.blockSeq(true))
			default:
				fallback() // an empty value
			}
		} else {
			p.kids = append(p.kids, p.inline())
			p.endLine()
		}
		if p.ind < col {
			break
		}
		if p.ind > col {
			fallback()
		}
	}
	p.content(n, mark)
	p.depth--
	return n
}

// blockSeq parses a block sequence whose first '-' is at pos. An indentless sequence (a mapping
// value at the mapping's own indent) ends at the first line at its indent not starting with '-'.
func (p *fastParser) blockSeq(indentless bool) *yaml.Node {
	p.enter()
	col := p.col()
	n := p.newNode(yaml.SequenceNode, "!!seq", 0, "", p.line, col)
	mark := len(p.kids)
	for {
		p.pos++ // the '-'
		p.spaces()
		switch c := p.peek(0); {
		case c == '\n' || c == '#' || p.pos >= len(p.src):
			p.endLine()
			if p.ind <= col {
				fallback() // an empty item
			}
			p.kids = append(p.kids, p.blockNode())
		case c == '-' && p.blankAt(p.pos+1):
			fallback() // a sequence in a sequence on one line
		case p.keyEnd() > 0:
			p.kids = append(p.kids, p.blockMap())
		default:
			p.kids = append(p.kids, p.inline())
			p.endLine()
		}
		if p.ind < col {
			break
		}
		if p.ind > col {
			fallback()
		}
		if p.peek(0) != '-' || !p.blankAt(p.pos+1) {
			if indentless {
				break
			}
			fallback()
		}
	}
	p.content(n, mark)
	p.depth--
	return n
}

// inline parses a value written on the rest of the line in block context: a scalar or a flow
// collection.
func (p *fastParser) inline() *yaml.Node {
	switch p.peek(0) {
	case '"', '\'':
		return p.quoted()
	case '[', '{':
		return p.flow()
	}
	start, line, col := p.pos, p.line, p.col()
	if !plainStart(p.src, p.pos) {
		fallback()
	}
	end := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '\n' {
			break
		}
		if c == ':' && p.blankAt(p.pos+1) {
			fallback() // a mapping where a scalar should be, or an error
		}
		if c == '#' && p.src[p.pos-1] == ' ' {
			break
		}
		p.pos++
		if c != ' ' {
			end = p.pos
		}
	}
	p.pos = end
	return p.plain(p.src[start:end], line, col)
}

// plainStart reports whether a plain scalar may start at src[i]: not at an indicator, and a '-'
// only when followed by something harmless.
func plainStart(src string, i int) bool {
	c := src[i]
	switch {
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
		return true
	case c == '-' || c == '.':
		if i+1 >= len(src) {
			return false
		}
		d := src[i+1]
		return d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' || d >= '0' && d <= '9' || d == '-' || d == '.' || d == '/' || d == '_'
	case c == '_' || c == '/' || c == '$' || c == '(' || c == ')' || c == '~' || c == '+' || c == '=' || c == ';' || c == '^' || c == '<':
		return true
	}
	return false
}

// plain makes a plain scalar node, resolving its tag as yaml.v3 does: a value whose first byte
// gives yaml.v3 no hint is a string; one starting with a letter of yYnNtTfFoO~ is a string unless
// it is one of the words yaml.v3 looks up; numbers (and anything else starting with a digit, a sign
// or a dot) are resolved by yaml.v3 itself.
func (p *fastParser) plain(v string, line, col int) *yaml.Node {
	tag := "!!str"
	switch c := v[0]; {
	case c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.':
		var ok bool
		if tag, ok = p.tags[v]; !ok {
			p.scratch = yaml.Node{Kind: yaml.ScalarNode, Value: v}
			tag = p.scratch.ShortTag()
			if p.tags == nil {
				p.tags = map[string]string{}
			}
			if len(p.tags) < 1024 {
				p.tags[v] = tag
			}
		}
	case strings.IndexByte("yYnNtTfFoO~<", c) >= 0:
		switch v {
		case "true", "True", "TRUE", "false", "False", "FALSE":
			tag = "!!bool"
		case "null", "Null", "NULL", "~":
			tag = "!!null"
		case "<<":
			fallback() // a merge key: leave it to yaml.v3
		}
	}
	return p.newNode(yaml.ScalarNode, tag, 0, v, line, col)
}

// quoted parses a single- or double-quoted scalar that ends on its own line.
func (p *fastParser) quoted() *yaml.Node {
	q := p.src[p.pos]
	line, col := p.line, p.col()
	p.pos++
	start := p.pos
	var b []byte // the unescaped value, once an escape is seen
	for {
		if p.pos >= len(p.src) || p.src[p.pos] == '\n' {
			fallback() // multi-line or unterminated
		}
		c := p.src[p.pos]
		switch {
		case q == '\'' && c == '\'':
			if p.peek(1) != '\'' {
				goto done
			}
			b = append(b, p.src[start:p.pos+1]...)
			p.pos += 2
			start = p.pos
			continue
		case q == '"' && c == '"':
			goto done
		case q == '"' && c == '\\':
			b = append(b, p.src[start:p.pos]...)
			var r byte
			switch p.peek(1) {
			case '\\':
				r = '\\'
			case '"':
				r = '"'
			case 'n':
				r = '\n'
			case 't':
				r = '\t'
			case 'r':
				r = '\r'
			default:
				fallback()
			}
			b = append(b, r)
			p.pos += 2
			start = p.pos
			continue
		}
		p.pos++
	}
done:
	v := p.src[start:p.pos]
	if b != nil {
		v = string(append(b, v...))
	}
	p.pos++
	style := yaml.DoubleQuotedStyle
	if q == '\'' {
		style = yaml.SingleQuotedStyle
	}
	return p.newNode(yaml.ScalarNode, "!!str", style, v, line, col)
}

// flow parses a flow sequence or mapping that closes on its own line.
func (p *fastParser) flow() *yaml.Node {
	p.enter()
	open := p.src[p.pos]
	n := p.newNode(yaml.SequenceNode, "!!seq", yaml.FlowStyle, "", p.line, p.col())
	closer := byte(']')
	if open == '{' {
		n.Kind, n.Tag, closer = yaml.MappingNode, "!!map", '}'
	}
	mark := len(p.kids)
	p.pos++
	p.spaces()
	if p.peek(0) == closer {
		p.pos++
	} else {
		for {
			if open == '{' {
				p.kids = append(p.kids, p.flowKey())
				p.spaces()
			}
			p.kids = append(p.kids, p.flowValue())
			p.spaces()
			c := p.peek(0)
			if c == closer {
				p.pos++
				break
			}
			if c != ',' {
				fallback()
			}
			p.pos++
			p.spaces()
			if p.peek(0) == closer || p.peek(0) == ',' {
				fallback() // trailing or doubled comma
			}
		}
	}
	p.content(n, mark)
	p.depth--
	return n
}

func (p *fastParser) spaces() {
	for p.pos < len(p.src) && p.src[p.pos] == ' ' {
		p.pos++
	}
}

// flowKey parses "key:" followed by a space inside a flow mapping.
func (p *fastParser) flowKey() *yaml.Node {
	start, col := p.pos, p.col()
	if start >= len(p.src) || !keyStart(p.src[start]) {
		fallback()
	}
	for p.pos < len(p.src) && keyByte(p.src[p.pos]) {
		p.pos++
	}
	if p.peek(0) != ':' || p.peek(1) != ' ' || p.pos-start > 1000 {
		fallback()
	}
	k := p.plain(p.src[start:p.pos], p.line, col)
	p.pos++
	return k
}

// flowValue parses one value inside a flow collection.
func (p *fastParser) flowValue() *yaml.Node {
	if p.pos >= len(p.src) {
		fallback()
	}
	switch p.src[p.pos] {
	case '"', '\'':
		return p.quoted()
	case '[', '{':
		return p.flow()
	}
	if !plainStart(p.src, p.pos) {
		fallback()
	}
	start, col := p.pos, p.col()
	end := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == ',' || c == ']' || c == '}' {
			break
		}
		switch c {
		case '\n', ':', '?', '#', '[', '{', '"', '\'':
			fallback()
		}
		p.pos++
		if c != ' ' {
			end = p.pos
		}
	}
	return p.plain(p.src[start:end], p.line, col)
}
