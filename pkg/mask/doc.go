// Package mask hides secret values in text that leaves a worker: task output, error text and
// log lines. A Masker is built from the values a task resolved; it replaces every occurrence of
// every form of each value (below) with *** (or [secret:NAME] with WithNames). It imports
// nothing of Cairn.
//
//	m := mask.New([]mask.Secret{{Name: "db-password", Value: pw}})
//	out := m.Bytes(output)                 // a whole text
//	w := m.Writer(dst); io.Copy(w, pipe); w.Close() // a stream, in chunks
//	logger := slog.New(mask.NewHandler(h, registry.Masker))
//
// # What is masked
//
// For each value v of at least MinLen (4) bytes, Forms(v) lists:
//
//   - v itself;
//   - v in standard and URL-safe base64, with and without padding, as a message of its own;
//   - for base64 of a longer message holding v (as `echo "$TOKEN" | base64` makes, with its
//     newline, or a JSON document that embeds the value), the characters that depend on v's
//     bytes only, for each of the three alignments of v within the message's 3-byte groups
//     (both alphabets). The character at each end that mixes v's first or last byte with a
//     neighbouring byte is not determined by v and stays visible: at most 4 bits of v's first
//     byte and 4 of its last;
//   - v URL-encoded, by url.QueryEscape (space as +) and url.PathEscape (space as %20), each
//     with upper- and lower-case hex digits;
//   - v inside a JSON string: as encoding/json writes it with and without HTML escaping (\u003c
//     for <), with / escaped as \/, and with every non-ASCII character as \uXXXX (Python's
//     default);
//   - v in lower- and upper-case hex.
//
// Occurrences may overlap (two secrets sharing characters, a value inside another's form):
// the union of all occurrences is masked, never only the first one found, so no part of an
// overlapping secret is left out. Matching is one pass of an Aho-Corasick automaton over the
// text, whatever the number of forms: linear in the text.
//
// # What is not masked
//
// Masking is a guard against accidents: a task that means to leak a secret can always
// transform it first. Not covered: values shorter than MinLen (they are ignored, see MinLen;
// the API should refuse to store them); base64 wrapped over several lines (MIME, PEM, GNU
// base64's 76 columns) when v's characters span a line break; other encodings (hex with
// separators, percent-encoding of a different set of characters such as JavaScript's
// encodeURIComponent leaving !'()* alone, double encoding, compression, encryption); a value
// split by the program itself (printed in two parts, reversed, one character per line);
// encodings of a value concatenated with others (base64 of v is found, base64 of base64 of v
// is not).
//
// # Streams and truncation
//
// Writer masks a stream written in chunks of any size: a form split across writes is still
// masked, because the last MaxLen-1 bytes are held back until the next write or Close (and so
// is a found occurrence that an overlapping one may still extend, up to 64 KiB more). What it
// writes equals Bytes of the whole stream.
//
// Cut masks a piece cut from a longer text before it was masked (the tail an executor keeps of
// a process's output, the head of a response body): besides whole forms, it masks the part of
// a form the cut split, at either end, so a tail that starts in the middle of a secret does not
// show its end.
//
// # Invariants and the tests that prove them
//
//   - Every listed form of every value is masked, alone and inside other text:
//     TestFormsAreMasked, TestBase64Embedded.
//   - Writer's output equals Bytes of the concatenated input for every split of it:
//     TestWriterEverySplit, FuzzWriterMasksEveryForm (no form survives any chunking).
//   - Overlapping occurrences are masked as their union: TestOverlappingSecrets, and
//     TestAutomatonAgainstOracle checks the automaton (and the Writer, chunked at random)
//     against a naive search on random patterns with many shared prefixes.
//   - Cut leaves no suffix or prefix of a form at a cut end: TestCut.
//   - The slog handler masks messages, string, error, numeric, struct and grouped attribute
//     values: TestHandler.
//   - Values shorter than MinLen are ignored: TestShortValuesIgnored.
package mask
