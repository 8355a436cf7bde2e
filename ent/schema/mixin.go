package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
)

// LastSequence is the column every projection row carries: the sequence of
// the last event that changed the row.
type LastSequence struct{ mixin.Schema }

// Fields of the LastSequence mixin.
func (LastSequence) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("last_sequence").Comment("sequence of the last event that changed this row"),
	}
}
