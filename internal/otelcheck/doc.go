// Package otelcheck proves, with the OpenTelemetry SDK and its in-memory
// exporters, that a store emits the spans and metrics
// docs/OBSERVABILITY.md lists. It is a module of its own so that the SDK
// never enters the module graph of github.com/peonhq/peon, nor of an
// application that imports it; `go -C tools tool task test` runs its
// tests.
package otelcheck
