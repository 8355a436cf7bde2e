package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Event is the append-only log. Its primary key is the global sequence;
// on SQLite it is AUTOINCREMENT, so a number is never reused.
type Event struct{ ent.Schema }

// Annotations of the Event schema.
func (Event) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("events")}
}

// Fields of the Event schema.
func (Event) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("id").StorageKey("sequence").Immutable().Comment("global position in the log, 1, 2, 3…"),
		field.String("event_id").Unique().Immutable().Comment("UUID of the event"),
		field.String("stream_id").Immutable(),
		field.Int64("stream_version").Immutable().Comment("1, 2, 3… within the stream"),
		field.String("event_type").Immutable(),
		field.Int("schema_version").Default(1).Immutable().Comment("payload version, for upcasting"),
		field.Text("payload").Immutable().
			SchemaType(map[string]string{dialect.Postgres: "json"}).
			Comment("the event's fields as a JSON object"),
		field.Time("occurred_at").Immutable().Comment("the event's at"),
		field.Time("recorded_at").Immutable().Comment("when the event was stored"),
		field.String("command_id").Optional().Nillable().Immutable(),
		field.String("correlation_id").Optional().Nillable().Immutable(),
		field.String("causation_id").Optional().Nillable().Immutable(),
	}
}

// Indexes of the Event schema.
func (Event) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("stream_id", "stream_version").Unique().StorageKey("idx_events_stream"),
		index.Fields("command_id").StorageKey("idx_events_command").
			Annotations(entsql.IndexWhere("command_id IS NOT NULL")),
		index.Fields("correlation_id").StorageKey("idx_events_correlation").
			Annotations(entsql.IndexWhere("correlation_id IS NOT NULL")),
	}
}
