package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Turn is the projection of a turn: one prompt and the agent's work on it.
type Turn struct{ ent.Schema }

// Annotations of the Turn schema.
func (Turn) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("projection_turns")}
}

// Mixin of the Turn schema.
func (Turn) Mixin() []ent.Mixin { return []ent.Mixin{LastSequence{}} }

// Fields of the Turn schema.
func (Turn) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("turn_id"),
		field.String("thread_id"),
		field.Int("ordinal").Comment("1, 2, 3… within the thread"),
		field.Enum("status").Values("running", "completed", "failed", "interrupted", "reverted"),
		field.String("error").Optional().Nillable(),
		field.String("checkpoint_ref").Optional().Nillable(),
		field.Time("started_at"),
		field.Time("ended_at").Optional().Nillable(),
	}
}

// Indexes of the Turn schema.
func (Turn) Indexes() []ent.Index {
	return []ent.Index{index.Fields("thread_id", "ordinal").Unique().StorageKey("idx_turns_thread")}
}
