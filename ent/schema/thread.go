package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Thread is the projection of a thread: a conversation with an agent.
type Thread struct{ ent.Schema }

// Annotations of the Thread schema.
func (Thread) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("projection_threads")}
}

// Mixin of the Thread schema.
func (Thread) Mixin() []ent.Mixin { return []ent.Mixin{LastSequence{}} }

// Fields of the Thread schema.
func (Thread) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("thread_id"),
		field.String("project_id"),
		field.String("title"),
		field.String("model"),
		field.Enum("status").Values("idle", "running"),
		field.Int("turn_count"),
		field.Int("message_count"),
		field.String("latest_turn_id").Optional().Nillable(),
		field.Time("created_at"),
		field.Time("updated_at"),
		field.Time("archived_at").Optional().Nillable(),
		field.Time("deleted_at").Optional().Nillable(),
	}
}

// Indexes of the Thread schema.
func (Thread) Indexes() []ent.Index {
	return []ent.Index{index.Fields("project_id").StorageKey("idx_threads_project")}
}
