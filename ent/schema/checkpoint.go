package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Checkpoint is the projection of the git checkpoints taken after turns.
type Checkpoint struct{ ent.Schema }

// Annotations of the Checkpoint schema.
func (Checkpoint) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("checkpoints")}
}

// Mixin of the Checkpoint schema.
func (Checkpoint) Mixin() []ent.Mixin { return []ent.Mixin{LastSequence{}} }

// Fields of the Checkpoint schema.
func (Checkpoint) Fields() []ent.Field {
	return []ent.Field{
		field.String("thread_id"),
		field.String("turn_id"),
		field.String("git_ref"),
		field.String("message"),
		field.Time("created_at"),
		field.Time("reverted_at").Optional().Nillable(),
	}
}

// Indexes of the Checkpoint schema.
func (Checkpoint) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("thread_id", "turn_id").Unique().StorageKey("idx_checkpoints_turn"),
		index.Fields("thread_id", "git_ref").StorageKey("idx_checkpoints_ref"),
	}
}
