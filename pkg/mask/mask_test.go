package mask

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
)

func masker(values ...string) *Masker {
	var s []Secret
	for i, v := range values {
		s = append(s, Secret{Name: fmt.Sprintf("s%d", i), Value: v})
	}
	return New(s)
}

func jsonInner(t *testing.T, v string) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[1 : len(b)-1])
}

func TestFormsAreMasked(t *testing.T) {
	for _, v := range []string{
		"hunter2-correct-horse",
		"p@ss w/rd&<x>=?+%é😀\"\\\n",
		"AKIAIOSFODNN7EXAMPLE",
		"\x00\x01binary\xff\xfe",
	} {
		m := masker(v)
		raw := func(e *base64.Encoding) string { return e.WithPadding(base64.NoPadding).EncodeToString([]byte(v)) }
		forms := map[string]string{
			"plain":               v,
			"base64":              base64.StdEncoding.EncodeToString([]byte(v)),
			"base64 unpadded":     raw(base64.StdEncoding),
			"base64url":           base64.URLEncoding.EncodeToString([]byte(v)),
			"base64url unpadded":  raw(base64.URLEncoding),
			"query escape":        url.QueryEscape(v),
			"path escape":         url.PathEscape(v),
			"query escape lower":  lowerHexEscapes(url.QueryEscape(v)), // %2f: hex digits only
			"json":                jsonInner(t, v),
			"hex":                 hex.EncodeToString([]byte(v)),
			"HEX":                 strings.ToUpper(hex.EncodeToString([]byte(v))),
			"json no html escape": noHTML(jsonInner(t, v)),
			"json escaped slash":  strings.ReplaceAll(noHTML(jsonInner(t, v)), "/", `\/`),
		}
		if v == "p@ss w/rd&<x>=?+%é😀\"\\\n" {
			forms["json ascii"] = `p@ss w/rd&<x>=?+%\u00e9\ud83d\ude00\"\\\n` // Python's json.dumps
			forms["json php"] = `p@ss w\/rd&<x>=?+%\u00e9\ud83d\ude00\"\\\n`  // PHP's json_encode
		}
		for name, f := range forms {
			in := "before " + f + " after"
			if got := m.String(in); got != "before *** after" {
				t.Errorf("%q, %s form %q: masked to %q", v, name, f, got)
			}
			if got := m.Bytes([]byte(f)); string(got) != "***" {
				t.Errorf("%q, %s form alone: masked to %q", v, name, got)
			}
		}
	}
}

func noHTML(s string) string {
	return strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(s)
}

func TestBase64Embedded(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, v := range []string{"abcd", "hunter2", "a-longer-secret-value-of-34-bytes!", "\xff\xfe\xfd\xfc\xfb"} {
		m := masker(v)
		for pre := range 6 {
			for suf := range 6 {
				msg := make([]byte, pre+len(v)+suf)
				for i := range msg {
					msg[i] = byte(r.IntN(256))
				}
				copy(msg[pre:], v)
				for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
					e := enc.EncodeToString(msg)
					got := m.String(e)
					// The characters whose 6 bits all come from v are [first, last].
					first := (8*pre + 5) / 6
					last := 8*(pre+len(v))/6 - 1
					if last < first {
						continue
					}
					i := strings.Index(got, Redacted)
					if i < 0 || strings.Count(got, Redacted) != 1 {
						t.Fatalf("%q at offset %d of %d bytes: %q masked to %q", v, pre, len(msg), e, got)
					}
					j := len(e) - (len(got) - i - len(Redacted)) // e[j:] is what follows the mask
					if got[:i] != e[:i] || got[i+len(Redacted):] != e[j:] {
						t.Fatalf("masked text is not a cut of the original: %q → %q", e, got)
					}
					// Every character fully determined by v is masked; at most the mixed
					// characters (and padding) around them may happen to be masked too.
					if i > first || j <= last || first-i > 1 || j-last-1 > 3 {
						t.Errorf("%q at offset %d of %d bytes: %q masked to %q; want [%d, %d] masked", v, pre, len(msg), e, got, first, last)
					}
				}
			}
		}
	}
}

func TestShortValuesIgnored(t *testing.T) {
	m := masker("abc", "", "xy")
	if !m.Empty() || Forms("abc") != nil || m.MaxLen() != 0 {
		t.Fatal("values shorter than MinLen are not ignored")
	}
	if got := m.String("abc xy abc"); got != "abc xy abc" {
		t.Fatalf("masked %q", got)
	}
	var nilMasker *Masker
	if got := nilMasker.String("abc"); got != "abc" || !nilMasker.Empty() {
		t.Fatal("nil masker")
	}
	// Exactly MinLen is masked.
	if got := masker("abcd").String("xabcdx"); got != "x***x" {
		t.Fatalf("MinLen value: %q", got)
	}
}

func TestOverlappingSecrets(t *testing.T) {
	for _, c := range []struct {
		secrets []string
		in      string
		want    string
	}{
		{[]string{"abcdefgh", "efghijkl"}, "xxabcdefghijklyy", "xx***yy"},
		{[]string{"efghijkl", "abcdefgh"}, "xxabcdefghijklyy", "xx***yy"},
		{[]string{"password123", "word"}, "a password123 word b", "a *** *** b"},
		{[]string{"aaaa"}, "baaaaaaab", "b***b"},
		{[]string{"abab"}, "ababab abab", "*** ***"},
		{[]string{"abcd"}, "abcdabcd", "******"}, // adjacent occurrences stay two spans
	} {
		if got := masker(c.secrets...).String(c.in); got != c.want {
			t.Errorf("%v on %q: %q, want %q", c.secrets, c.in, got, c.want)
		}
	}
	named := New([]Secret{{"first", "abcdefgh"}, {"second", "efghijkl"}}, WithNames())
	if got := named.String("abcdefghijkl"); got != "[secret:first]" {
		t.Errorf("named union: %q", got)
	}
	if got := named.String("x efghijkl"); got != "x [secret:second]" {
		t.Errorf("named: %q", got)
	}
}

// naiveMask is the oracle: every occurrence of every pattern, found by comparing at every
// position, merged when they overlap (not when they only touch), as the Masker does.
func naiveMask(text string, patterns []string) string {
	type iv struct{ s, e int }
	var ivs []iv
	for i := range text {
		for _, p := range patterns {
			if i+len(p) <= len(text) && text[i:i+len(p)] == p {
				ivs = append(ivs, iv{i, i + len(p)})
			}
		}
	}
	var merged []iv
	for _, x := range ivs { // ivs sorted by start
		if n := len(merged); n > 0 && x.s < merged[n-1].e {
			merged[n-1].e = max(merged[n-1].e, x.e)
			continue
		}
		merged = append(merged, x)
	}
	var b strings.Builder
	prev := 0
	for _, x := range merged {
		b.WriteString(text[prev:x.s])
		b.WriteString(Redacted)
		prev = x.e
	}
	b.WriteString(text[prev:])
	return b.String()
}

// TestAutomatonAgainstOracle compares the automaton with the naive search on random patterns
// over a small alphabet (many shared prefixes, overlaps and nodes with many edges).
func TestAutomatonAgainstOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 300 {
		alphabet := "ab"
		if round%3 == 1 {
			alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
		}
		word := func(n int) string {
			b := make([]byte, n)
			for i := range b {
				b[i] = alphabet[r.IntN(len(alphabet))]
			}
			return string(b)
		}
		var pats []string
		for range 1 + r.IntN(30) {
			pats = append(pats, word(1+r.IntN(8)))
		}
		text := word(r.IntN(200))
		a := newAutomaton(pats)
		m := &Masker{ac: a, patterns: pats, names: make([]string, len(pats))}
		for _, p := range pats {
			m.patLens = append(m.patLens, len(p))
			m.maxLen = max(m.maxLen, len(p))
		}
		if got, want := m.String(text), naiveMask(text, pats); got != want {
			t.Fatalf("patterns %q, text %q:\n got %q\nwant %q", pats, text, got, want)
		}
		// The Writer agrees whatever the chunking.
		var out bytes.Buffer
		w := m.Writer(&out)
		for rest := text; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(10))
			_, _ = w.Write([]byte(rest[:n]))
			rest = rest[n:]
		}
		_ = w.Close()
		if want := naiveMask(text, pats); out.String() != want {
			t.Fatalf("Writer: patterns %q, text %q:\n got %q\nwant %q", pats, text, out.String(), want)
		}
	}
}

func TestWriterEverySplit(t *testing.T) {
	v := "s3cr3t-t0ken/+value"
	m := masker(v, "another-one")
	text := "start " + v + " mid " + base64.StdEncoding.EncodeToString([]byte(v)) + " " + url.QueryEscape(v) +
		" another-one" + v + " end " + v
	want := string(m.Bytes([]byte(text)))
	if strings.Contains(want, v) || strings.Count(want, Redacted) < 5 {
		t.Fatalf("Bytes did not mask: %q", want)
	}
	write := func(chunks ...string) string {
		var out bytes.Buffer
		w := m.Writer(&out)
		for _, c := range chunks {
			if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for i := 0; i <= len(text); i++ {
		if got := write(text[:i], text[i:]); got != want {
			t.Fatalf("split at %d: %q\nwant %q", i, got, want)
		}
		for j := i; j <= len(text); j += 7 {
			if got := write(text[:i], text[i:j], text[j:]); got != want {
				t.Fatalf("split at %d and %d: %q", i, j, got)
			}
		}
	}
	bytewise := make([]string, len(text))
	for i := range text {
		bytewise[i] = text[i : i+1]
	}
	if got := write(bytewise...); got != want {
		t.Fatalf("one byte per write: %q", got)
	}
	// A Writer writes through when it has nothing to mask, and refuses writes after Close.
	var out bytes.Buffer
	w := masker().Writer(&out)
	_, _ = w.Write([]byte("abc"))
	if out.String() != "abc" {
		t.Fatal("empty masker buffered")
	}
	_ = w.Close()
	if _, err := w.Write([]byte("x")); err != ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
}

func TestWriterHoldLimit(t *testing.T) {
	// A secret that overlaps itself, repeated without end, cannot be held forever.
	m := masker("aaaa")
	var out bytes.Buffer
	w := m.Writer(&out)
	chunk := bytes.Repeat([]byte("a"), 4096)
	for range 64 {
		_, _ = w.Write(chunk)
	}
	if out.Len() == 0 {
		t.Fatal("nothing written after 256 KiB of one long occurrence")
	}
	if len(w.pending) > holdLimit+4 {
		t.Fatalf("holding %d bytes", len(w.pending))
	}
	_ = w.Close()
	if strings.Contains(out.String(), "a") {
		t.Fatalf("a part of the run was written unmasked: %q", out.String()[:64])
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, fmt.Errorf("disk full")
	}
	return len(p), nil
}

func TestWriterKeepsTheError(t *testing.T) {
	w := masker("secret-value").Writer(&failWriter{n: 1})
	big := bytes.Repeat([]byte("x"), 100)
	if _, err := w.Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(big); err == nil || err.Error() != "disk full" {
		t.Fatalf("second write: %v", err)
	}
	if _, err := w.Write(big); err == nil {
		t.Fatal("error forgotten")
	}
	if err := w.Close(); err == nil {
		t.Fatal("Close forgot the error")
	}
}

func TestCut(t *testing.T) {
	v := "supersecretvalue"
	m := masker(v)
	b64 := base64.StdEncoding.EncodeToString([]byte(v))
	for _, c := range []struct {
		in                  string
		cutBefore, cutAfter bool
		want                string
	}{
		{"retvalue and more", true, false, "*** and more"},
		{"retvalue and more", false, false, "retvalue and more"},
		{"start supersec", false, true, "start ***"},
		{"start supersec", false, false, "start supersec"},
		{"e and " + v + " and s", true, true, "*** and *** and ***"}, // "e" ends v, "s" starts it
		{b64[5:] + " tail", true, false, "*** tail"},
		{"head " + b64[:9], false, true, "head ***"},
		{"nothing here", true, true, "nothing here"},
		{"", true, true, ""},
	} {
		if got := string(m.Cut([]byte(c.in), c.cutBefore, c.cutAfter)); got != c.want {
			t.Errorf("Cut(%q, %v, %v) = %q, want %q", c.in, c.cutBefore, c.cutAfter, got, c.want)
		}
	}
	named := New([]Secret{{"tok", v}}, WithNames())
	if got := string(named.Cut([]byte("retvalue!"), true, false)); got != "[secret:tok]!" {
		t.Errorf("named cut: %q", got)
	}
}

func TestRegistry(t *testing.T) {
	var r Registry
	if !r.Masker().Empty() {
		t.Fatal("zero registry masks")
	}
	rel1 := r.Add(Secret{"a", "alpha-secret"})
	rel2 := r.Add(Secret{"a", "alpha-secret"}, Secret{"b", "beta-secret"})
	if got := r.Masker().String("alpha-secret beta-secret"); got != "*** ***" {
		t.Fatalf("%q", got)
	}
	rel2()
	rel2() // idempotent: does not drop the first holder's reference
	if got := r.Masker().String("alpha-secret beta-secret"); got != "*** beta-secret" {
		t.Fatalf("after one release: %q", got)
	}
	rel1()
	if !r.Masker().Empty() {
		t.Fatal("released secrets still masked")
	}
}

// FuzzWriterMasksEveryForm: whatever the secret, the surrounding text and the chunking, no form
// of the secret survives the Writer, and the Writer agrees with Bytes.
func FuzzWriterMasksEveryForm(f *testing.F) {
	f.Add([]byte("hunter2!"), []byte("prefix "), []byte(" suffix"), uint8(0), []byte{1, 2, 3})
	f.Add([]byte("aaaa"), []byte("aaa"), []byte("aaaaa"), uint8(3), []byte{1})
	f.Add([]byte("p@ss w/rd"), []byte{}, []byte("\n"), uint8(7), []byte{5, 0, 9})
	f.Fuzz(func(t *testing.T, secret, pre, post []byte, which uint8, chunks []byte) {
		v := string(secret)
		if len(v) < MinLen || len(v) > 256 || strings.Contains(v, "*") {
			return // ignored by design; '*' could be rebuilt from the mask itself
		}
		forms := Forms(v)
		form := forms[int(which)%len(forms)]
		text := string(pre) + form + string(post) + v
		m := masker(v)
		var out bytes.Buffer
		w := m.Writer(&out)
		rest := []byte(text)
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(chunks) > 0 {
				n = min(n, 1+int(chunks[i%len(chunks)]))
			}
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if want := string(m.Bytes([]byte(text))); got != want {
			t.Fatalf("Writer %q != Bytes %q", got, want)
		}
		for _, f := range forms {
			if strings.Contains(got, f) {
				t.Fatalf("form %q of %q survives in %q", f, v, got)
			}
		}
	})
}

func BenchmarkMask(b *testing.B) {
	var secrets []Secret
	for i := range 5 {
		secrets = append(secrets, Secret{Name: fmt.Sprint(i), Value: fmt.Sprintf("secret-value-%d-0123456789abcdef", i)})
	}
	m := New(secrets)
	text := bytes.Repeat([]byte("INFO 2026-01-01T00:00:00Z loaded 1234 rows from orders in 35ms; status=ok\n"), (1<<20)/75)
	b.Run("bytes", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			_ = m.Bytes(text)
		}
	})
	b.Run("writer-4KiB-chunks", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		for b.Loop() {
			w := m.Writer(discard{})
			for i := 0; i < len(text); i += 4096 {
				_, _ = w.Write(text[i:min(i+4096, len(text))])
			}
			_ = w.Close()
		}
	})
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			_ = New(secrets)
		}
	})
	pem := Secret{Name: "key", Value: strings.Repeat("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n", 64)}
	b.Run("new-3KiB-key", func(b *testing.B) {
		for b.Loop() {
			_ = New([]Secret{pem})
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
