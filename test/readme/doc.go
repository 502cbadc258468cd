// Package readme runs the README's curl tour, as a user would paste it,
// against a fresh server: every command must succeed and the reads must
// return what the tour wrote.
package readme
