package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// CompactedCommand records a command some of whose events compaction
// folded away, so that an Append repeating it is still recognised as
// stored.
type CompactedCommand struct{ ent.Schema }

// Annotations of the CompactedCommand schema.
func (CompactedCommand) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("compacted_commands")}
}

// Fields of the CompactedCommand schema.
func (CompactedCommand) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("command_id").Immutable(),
		field.Int64("events").Immutable().Comment("how many events the command stored"),
		field.Time("compacted_at").Immutable(),
	}
}
