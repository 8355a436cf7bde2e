package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Compaction records one gap that compaction left in the log: the
// message.delta events of one message, folded into the first of them.
// The removed events lie after first_sequence (the folded event, which
// stays) up to last_sequence, and after first_version up to last_version
// in their stream; Verify accepts exactly the gaps such rows declare.
type Compaction struct{ ent.Schema }

// Annotations of the Compaction schema.
func (Compaction) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("compactions")}
}

// Fields of the Compaction schema.
func (Compaction) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id").StorageKey("first_sequence").Immutable().Comment("the sequence of the folded event, which stays"),
		field.Int64("last_sequence").Immutable().Comment("the sequence of the last event removed"),
		field.String("stream_id").Immutable(),
		field.Int64("first_version").Immutable().Comment("the stream version of the folded event"),
		field.Int64("last_version").Immutable().Comment("the stream version of the last event removed"),
		field.Int64("events").Immutable().Comment("how many events were removed"),
		field.Int64("bytes").Immutable().Comment("payload bytes the log gave up"),
		field.Time("compacted_at").Immutable(),
	}
}

// Indexes of the Compaction schema.
func (Compaction) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("stream_id", "first_version").StorageKey("idx_compactions_stream"),
	}
}
