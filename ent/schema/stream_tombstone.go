package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// StreamTombstone records a stream that retention pruned: its events are
// gone from the log, and the tombstone keeps what Verify, Rebuild,
// CatchUp, import and the appends need to know of them.
type StreamTombstone struct{ ent.Schema }

// Annotations of the StreamTombstone schema.
func (StreamTombstone) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("stream_tombstones")}
}

// Fields of the StreamTombstone schema.
func (StreamTombstone) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("stream_id").Immutable().Comment("the pruned stream"),
		field.Int64("last_version").Immutable().Comment("the stream's version when it was pruned"),
		field.Int64("first_sequence").Immutable().Comment("the sequence of its first event"),
		field.Int64("last_sequence").Immutable().Comment("the sequence of its last event"),
		field.Int64("events").Immutable().Comment("how many events were pruned"),
		field.Int64("bytes").Immutable().Comment("their payload bytes"),
		field.Time("pruned_at").Immutable(),
	}
}

// Indexes of the StreamTombstone schema.
func (StreamTombstone) Indexes() []ent.Index {
	return []ent.Index{
		// The appends read the highest pruned sequence with the head.
		index.Fields("last_sequence").StorageKey("idx_tombstones_sequence"),
	}
}
