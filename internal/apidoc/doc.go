// Package apidoc holds a test of the module's public documentation: what
// `go doc` shows of the public packages never names an unexported
// identifier, which a reader of the docs cannot look up.
package apidoc
