// Package schemamigrate applies an Atlas migration directory (the
// embedded ones of package migrations, or one a test gives) to a
// database: each pending file in a transaction of its own, under the
// engine's migration lock, recorded in atlas_schema_revisions exactly as
// the atlas CLI records it, so that the CLI and the store see the same
// history. It refuses a directory that does not match its atlas.sum and a
// database whose history disagrees with the directory.
//
// It knows no engine by name: the caller gives an [Engine] (placeholders,
// the lock, the revision table's DDL, the table listing) and [Options]
// (the directory's name for messages, how executed_at is stored, the
// sentinel refusals wrap, a check of each read and a hook per applied
// file). What makes a database a peon store is the caller's policy
// (Options.Check), not this package's.
//
// The revisions are read by one reader, [ReadRevisions], into one row
// type, [Revision]; the runner and the status of package persistence both
// use it.
package schemamigrate
