package dag

import (
	"fmt"
	"strings"
)

// Name rules. Workflow names, task ids and pools share one rule, so all three are safe in URL
// paths, file names, environment values and metric labels without escaping.
const (
	maxNameLen      = 128
	maxParamNameLen = 64
	maxKeyLen       = 256 // env variable and header names
	nameRule        = "1-128 characters from a-z, 0-9, '_', '.' and '-', starting with a letter or digit"
	paramRule       = "1-64 characters from A-Z, a-z, 0-9 and '_', not starting with a digit"
)

// validName reports whether s matches [a-z0-9][a-z0-9_.-]{0,127}.
func validName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// validIdent reports whether s is [A-Za-z_][A-Za-z0-9_]* of at most max bytes: a parameter name
// (usable as .params.NAME in a template) or an environment variable name.
func validIdent(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && c >= '0' && c <= '9':
		default:
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is an HTTP field name (an RFC 9110 token).
func validHeaderName(s string) bool {
	if len(s) == 0 || len(s) > maxKeyLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// checkHeaderValue rejects what would let a value split into a second header or request.
func checkHeaderValue(v string) error {
	if i := strings.IndexAny(v, "\r\n\x00"); i >= 0 {
		return fmt.Errorf("contains a %q character, which is not allowed in a header value", v[i])
	}
	return nil
}

// checkNoNUL rejects strings that cannot be passed to exec (argv, environment, paths).
func checkNoNUL(v string) error {
	if strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("contains a NUL byte")
	}
	return nil
}

// suggest returns " (did you mean \"x\"?)" for the candidate closest to s, or "" if none is
// close. Each comparison spends len(s)*len(candidate) from *budget; once it is spent, suggest
// stops looking, so error messages stay cheap even for huge workflows.
func suggest(s string, candidates []string, budget *int) string {
	best, bestDist := "", min(max(1, len(s)/4), 3)+1
	var rows [3][]int
	for _, c := range candidates {
		if abs(len(c)-len(s)) >= bestDist {
			continue
		}
		if *budget -= (len(s) + 1) * (len(c) + 1); *budget < 0 {
			break
		}
		if d := editDistance(s, c, bestDist, &rows); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal-string-alignment distance of a and b (insertions, deletions,
// substitutions and swaps of adjacent bytes each cost 1), or some value >= limit once it is
// certain to reach limit. rows is scratch space reused across calls.
func editDistance(a, b string, limit int, rows *[3][]int) int {
	for k := range rows {
		if cap(rows[k]) < len(b)+1 {
			rows[k] = make([]int, len(b)+1)
		}
		rows[k] = rows[k][:len(b)+1]
	}
	pprev, prev, cur := rows[0], rows[1], rows[2]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pprev[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit { // row minima never decrease
			return limit
		}
		pprev, prev, cur = prev, cur, pprev
	}
	return prev[len(b)]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
