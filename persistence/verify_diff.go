package persistence

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/peonhq/peon/internal/projector"
)

// storedStates is projectorStates without its writes: a projector without
// a row in table counts as standing at 0.
func storedStates(ctx context.Context, q querier, table string) (low int64, agree bool, err error) {
	rows, err := q.QueryContext(ctx, "SELECT projector, last_sequence FROM "+table)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var seqs []int64
	missing := slices.Clone(projector.Names)
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return 0, false, err
		}
		seqs = append(seqs, seq)
		missing = slices.DeleteFunc(missing, func(n string) bool { return n == name })
	}
	if err := rows.Err(); err != nil {
		return 0, false, err
	}
	if len(missing) > 0 {
		seqs = append(seqs, 0)
	}
	return slices.Min(seqs), slices.Min(seqs) == slices.Max(seqs), nil
}

// shadowName is the temporary table that holds Verify's copy of a stored
// projection table.
func shadowName(table string) string { return "verify_" + table }

// diffTable adds a problem for each row and column where stored, the
// stored table t or a copy of it, and t, its rebuild, differ: first the
// rows of the rebuild that are
// missing or different, then the rows it does not have, each in key order
// (the key's columns joined by "/", compared as bytes). The database keeps
// back the rows that are the same; the others come one at a time. Values
// compare as text, the form the report shows them in.
func (s *Store) diffTable(ctx context.Context, tx querier, stored string, t projector.Table, r *VerifyReport) error {
	table, keys := t.Name, strings.Split(t.Key, ", ")
	cols, err := columns(ctx, tx, table)
	if err != nil {
		return err
	}
	var differ, on []string
	for _, c := range cols {
		differ = append(differ, s.d.Distinct("s."+c, "e."+c))
	}
	for _, k := range keys {
		on = append(on, "s."+k+" = e."+k)
	}
	// prefixed joins alias.name for each of names with sep.
	prefixed := func(alias string, names []string, sep string) string {
		return alias + "." + strings.Join(names, sep+alias+".")
	}
	rows, err := tx.QueryContext(ctx, "SELECT "+prefixed("s", cols, ", ")+", "+prefixed("e", cols, ", ")+
		" FROM "+stored+" s FULL JOIN "+table+" e ON "+strings.Join(on, " AND ")+
		" WHERE "+strings.Join(differ, " OR ")+
		" ORDER BY e."+keys[0]+" IS NULL, COALESCE("+prefixed("e", keys, " || '/' || ")+", "+prefixed("s", keys, " || '/' || ")+")"+s.d.ByteOrder())
	if err != nil {
		return err
	}
	defer rows.Close()
	n := len(cols)
	vals := make([]any, 2*n)
	ptrs := make([]any, 2*n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	keyAt := make([]int, len(keys))
	for i, k := range keys {
		keyAt[i] = slices.Index(cols, k)
	}
	key := func(row []any) string {
		k := make([]string, len(keyAt))
		for i, at := range keyAt {
			k[i] = text(row[at])
		}
		return strings.Join(k, "/")
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		stored, expected := vals[:n], vals[n:]
		switch {
		case stored[keyAt[0]] == nil:
			r.add(Problem{Kind: ProblemProjection, Table: table, Key: key(expected), Detail: "row missing"})
		case expected[keyAt[0]] == nil:
			r.add(Problem{Kind: ProblemProjection, Table: table, Key: key(stored), Detail: "row not in a rebuild"})
		default:
			for i, c := range cols {
				st, ex := text(stored[i]), text(expected[i])
				switch {
				case st != ex:
					r.add(Problem{Kind: ProblemProjection, Table: table, Key: key(expected), Column: c, Stored: st, Expected: ex})
				case (stored[i] == nil) != (expected[i] == nil):
					// The text NULL renders as SQL NULL does.
					r.add(Problem{Kind: ProblemProjection, Table: table, Key: key(expected), Column: c, Stored: st, Expected: ex,
						Detail: "one is SQL NULL, the other the text NULL"})
				}
			}
		}
	}
	return rows.Err()
}

// columns returns the columns of table in name order, without the
// surrogate key id of checkpoints.
func columns(ctx context.Context, q querier, table string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM "+table+" WHERE 1 = 0")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	cols = slices.DeleteFunc(cols, func(c string) bool { return c == "id" })
	slices.Sort(cols)
	return cols, nil
}

// text renders a column value for comparison and reports.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		return string(v)
	case bool:
		if v {
			return "1"
		}
		return "0"
	}
	return fmt.Sprint(v)
}
