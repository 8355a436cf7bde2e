// Package testhook carries into persistence what this module's tests give
// a store and its public API does not offer: a migration directory in
// place of the embedded one, to test a tampered or a newer directory. It
// rides on the context of the one call that opens the store, so that
// tests running in parallel each give their own, and no exported field or
// global variable holds it. Being internal, only this module can set it.
package testhook

import (
	"context"

	atlasmigrate "ariga.io/atlas/sql/migrate"
)

type migrationDirKey struct{}

// WithMigrationDir returns ctx carrying dir, which persistence.OpenWith,
// given that ctx, applies instead of its embedded migration directory. A
// nil dir leaves the embedded one.
func WithMigrationDir(ctx context.Context, dir atlasmigrate.Dir) context.Context {
	return context.WithValue(ctx, migrationDirKey{}, dir)
}

// MigrationDir returns the directory ctx carries, nil when none.
func MigrationDir(ctx context.Context) atlasmigrate.Dir {
	dir, _ := ctx.Value(migrationDirKey{}).(atlasmigrate.Dir)
	return dir
}
