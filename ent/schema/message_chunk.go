package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// MessageChunk is one message.delta of a message that is still streaming:
// a delta inserts a row instead of rewriting the message's text, and
// message.completed folds the rows into projection_messages.text, in
// sequence order, and deletes them. While a message streams its row keeps
// what message.added wrote: its text so far is that text followed by its
// chunks, and its last_sequence and updated_at are those of its last chunk
// (if any). The view projection_messages_live shows it so.
//
// The table has one b-tree, its primary key: a chunk is always appended at
// its end, whatever message it belongs to, so an append of deltas to many
// messages touches few pages. A message's chunks are found by a range of
// that key: every one of them comes after its message.added, so they lie
// among the rows with sequence > the message's added_sequence (of which only
// the chunks of messages still streaming are left).
type MessageChunk struct{ ent.Schema }

// Annotations of the MessageChunk schema.
func (MessageChunk) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("projection_message_chunks")}
}

// Fields of the MessageChunk schema.
func (MessageChunk) Fields() []ent.Field {
	return []ent.Field{
		// The sequence is given, never generated: no AUTOINCREMENT.
		field.Int64("id").StorageKey("sequence").Immutable().
			Annotations(entsql.Annotation{Incremental: new(false)}).
			Comment("sequence of the message.delta event"),
		field.String("message_id").Immutable(),
		field.Text("text").Immutable().Comment("the delta's text"),
		field.Time("updated_at").Immutable().Comment("the delta's at: the message's updated_at while this is its last chunk"),
	}
}
