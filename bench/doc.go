// Package bench holds the benchmarks that run peon against other Go
// libraries. It is a module of its own, so that those libraries never
// enter the module graph of github.com/peonhq/peon: see
// docs/BENCHMARKS-postgres.md for the command and the figures.
package bench
