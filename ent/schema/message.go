package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Message is the projection of a message of a turn.
type Message struct{ ent.Schema }

// Annotations of the Message schema.
func (Message) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("projection_messages")}
}

// Mixin of the Message schema.
func (Message) Mixin() []ent.Mixin { return []ent.Mixin{LastSequence{}} }

// Fields of the Message schema.
func (Message) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("message_id"),
		field.String("thread_id"),
		field.String("turn_id"),
		field.Enum("role").Values("user", "assistant", "system", "tool"),
		field.Text("text"),
		field.Bool("streaming"),
		field.Int64("added_sequence").Comment("sequence of the message.added event; orders a turn's messages"),
		field.Time("created_at"),
		field.Time("updated_at"),
	}
}

// Indexes of the Message schema.
func (Message) Indexes() []ent.Index {
	return []ent.Index{index.Fields("turn_id").StorageKey("idx_messages_turn")}
}
