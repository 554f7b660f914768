// Package report prints the benchmark's figures: each as one `name=value unit` line the moment
// it is known, then all of them again as a table at the end.
//
// Invariants: a name is lower-case letters, digits, '.', '_' and '-'; a value is a finite
// number (no exponent above 1e-3, at most 4 significant decimals), or the word "unavailable"
// (then without a unit). Settings lines start with "# " so a parser can skip them.
package report
