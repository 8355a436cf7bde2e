package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// Setting is the projection of setting.changed events: the latest value
// of each key.
type Setting struct{ ent.Schema }

// Annotations of the Setting schema.
func (Setting) Annotations() []schema.Annotation {
	return []schema.Annotation{entsql.Table("settings")}
}

// Mixin of the Setting schema.
func (Setting) Mixin() []ent.Mixin { return []ent.Mixin{LastSequence{}} }

// Fields of the Setting schema.
func (Setting) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("key"),
		field.Text("value").SchemaType(map[string]string{dialect.Postgres: "json"}).Comment("a JSON value"),
		field.Time("updated_at"),
	}
}
