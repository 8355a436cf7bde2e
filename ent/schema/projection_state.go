package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// ProjectionState records how far each projector has applied the log.
type ProjectionState struct{ ent.Schema }

// Annotations of the ProjectionState schema.
func (ProjectionState) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("projection_state")}
}

// Fields of the ProjectionState schema.
func (ProjectionState) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("projector"),
		field.Int64("last_sequence"),
		field.Time("updated_at"),
	}
}
