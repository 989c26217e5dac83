// Package bench holds keyturn's benchmarks that compare it with other
// libraries. It is a module of its own so that the libraries it compares
// against stay out of keyturn's go.mod. The benchmarks are in its test
// files; docs/BENCHMARKS.md describes them and records their results.
package bench
