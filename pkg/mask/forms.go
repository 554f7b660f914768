package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Forms returns the spellings of value that a Masker hides, deduplicated, longest first. A value
// shorter than MinLen has none. See the package documentation for what they cover.
func Forms(value string) []string {
	if len(value) < MinLen {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(f string) {
		if len(f) >= MinLen && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	add(value)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(enc.EncodeToString([]byte(value)))                               // the whole message, padded
		add(enc.WithPadding(base64.NoPadding).EncodeToString([]byte(value))) // and unpadded
		for align := range 3 {
			add(base64Stable(enc, value, align))
		}
	}
	for _, f := range []string{url.QueryEscape(value), url.PathEscape(value)} {
		add(f)
		add(lowerHexEscapes(f))
	}
	add(jsonString(value, true))
	add(jsonString(value, false))
	add(strings.ReplaceAll(jsonString(value, false), "/", `\/`))
	add(jsonASCII(value))
	add(strings.ReplaceAll(jsonASCII(value), "/", `\/`)) // PHP's json_encode default
	add(hex.EncodeToString([]byte(value)))
	add(strings.ToUpper(hex.EncodeToString([]byte(value))))
	// Longest first, so that a reader of the list sees the fullest forms first; the automaton
	// does not depend on the order.
	slices.SortStableFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out
}

// base64Stable returns the characters of the encoding of any message holding value at a byte
// offset ≡ align (mod 3) that depend on value's bytes only: base64 turns each 6 bits into one
// character, so a character whose 6 bits all come from value is the same whatever surrounds
// it. The characters mixing value's first or last byte with a neighbour (at most 4 bits of
// each) are left out; they are not determined by the value.
func base64Stable(enc *base64.Encoding, value string, align int) string {
	msg := make([]byte, align+len(value)+2)
	copy(msg[align:], value)
	full := enc.WithPadding(base64.NoPadding).EncodeToString(msg)
	startBit, endBit := 8*align, 8*(align+len(value))
	first := (startBit + 5) / 6 // first character starting at or after value's first bit
	last := endBit/6 - 1        // last character ending at or before value's last bit
	if last < first {
		return ""
	}
	return full[first : last+1]
}

// lowerHexEscapes rewrites %XX escapes with lower-case hex digits (some encoders write %2f).
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lower(b[i+1]), lower(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// jsonString is value as encoding/json writes it inside a string literal, without the quotes.
func jsonString(value string, escapeHTML bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	_ = enc.Encode(value) // a string always encodes
	s := strings.TrimSuffix(buf.String(), "\n")
	return s[1 : len(s)-1]
}

// jsonASCII is value as a JSON encoder that escapes every non-ASCII character writes it
// (Python's json.dumps default): \uXXXX, with surrogate pairs beyond the BMP.
func jsonASCII(value string) string {
	var b strings.Builder
	for _, r := range value {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}
