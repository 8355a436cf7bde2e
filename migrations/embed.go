// Package migrations embeds the Atlas migration directories, one per
// dialect. Each holds timestamped `<version>_<name>.sql` files and the
// `atlas.sum` that guards them; they are written by `task migrate:diff`
// from ent/schema and applied by persistence.Open or by the `atlas` CLI.
// Beside them, schema/ holds the desired state per dialect as DDL, which
// atlas.hcl's envs diff against; it is not embedded.
package migrations

import "embed"

// FS holds the directories sqlite/ and postgres/.
//
//go:embed sqlite/*.sql sqlite/atlas.sum postgres/*.sql postgres/atlas.sum
var FS embed.FS
