// Package ent holds the code that ent generates from the schemas in
// ent/schema. Nothing here but this file and ent/schema is written by hand;
// run `go generate ./ent` (or `task generate`) after changing a schema.
package ent

//go:generate go tool -modfile=../tools/go.mod ent generate --feature sql/execquery,sql/versioned-migration ./schema
