package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// Project is the projection of a project's events.
type Project struct{ ent.Schema }

// Annotations of the Project schema.
func (Project) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("projection_projects")}
}

// Mixin of the Project schema.
func (Project) Mixin() []ent.Mixin { return []ent.Mixin{LastSequence{}} }

// Fields of the Project schema.
func (Project) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("project_id"),
		field.String("name"),
		field.String("workspace_root"),
		field.Time("created_at"),
		field.Time("updated_at"),
		field.Time("deleted_at").Optional().Nillable(),
	}
}
