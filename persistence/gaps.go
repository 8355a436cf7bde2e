package persistence

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"
)

// Recorded gaps. Compaction (and pruning) remove events from the log; each
// removal is recorded, and Verify, Rebuild and CatchUp accept a missing
// sequence or stream version only where a record declares it. A gap that
// no record declares is still a problem: rows removed by hand, or lost.

// gap is one recorded removal: Events events of Stream, whose sequences
// lie after First up to Last and whose stream versions lie after
// FirstVersion up to LastVersion. The range may hold events that stay
// (other streams', or the folded event at First), so a gap declares where
// the removed events were and how many, not that every sequence in it is
// missing.
type gap struct {
	Stream                    string
	First, Last               int64 // sequences: the removed events lie in (First, Last]
	FirstVersion, LastVersion int64 // stream versions: likewise
	Events, Bytes             int64
}

// gapSource is a query of the recorded gaps of one kind: it returns the
// columns of a gap in their order (stream, first, last, first version,
// last version, events, bytes).
type gapSource struct {
	Table string // the table it reads, which a store may lack
	Query string
}

// gapSources are the kinds of recorded gaps loadGaps reads: compactions,
// and the tombstones of pruned streams (all of a stream's events, which
// lay from its first sequence to its last).
var gapSources = []gapSource{
	{Table: "compactions", Query: "SELECT stream_id, first_sequence, last_sequence, first_version, last_version, events, bytes FROM compactions"},
	{Table: "stream_tombstones", Query: "SELECT stream_id, first_sequence - 1, last_sequence, 0, last_version, events, bytes FROM stream_tombstones"},
}

// span is a half-open interval of positions (Lo, Hi].
type span struct{ Lo, Hi int64 }

// gapSet is the recorded gaps of a store, as loadGaps read them: the
// sequence ranges merged, the version ranges by stream, and how many
// events each stream gave up. It is held in memory, a few dozen bytes per
// record (one per compacted message).
type gapSet struct {
	gaps     []gap
	seqs     []span            // merged, sorted
	versions map[string][]span // by stream, merged, sorted
	removed  map[string]int64  // events removed, by stream
	total    int64             // events removed
}

// loadGaps reads every recorded gap of the store through q.
func loadGaps(ctx context.Context, q querier) (*gapSet, error) {
	g := &gapSet{}
	for _, src := range gapSources {
		rows, err := q.QueryContext(ctx, src.Query)
		if err != nil {
			return nil, fmt.Errorf("read recorded gaps (%s): %w", src.Table, err)
		}
		for rows.Next() {
			var gp gap
			if err := rows.Scan(&gp.Stream, &gp.First, &gp.Last, &gp.FirstVersion, &gp.LastVersion, &gp.Events, &gp.Bytes); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read recorded gaps (%s): %w", src.Table, err)
			}
			g.gaps = append(g.gaps, gp)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read recorded gaps (%s): %w", src.Table, err)
		}
	}
	g.index()
	return g, nil
}

// add records more gaps, of any source.
func (g *gapSet) add(gaps ...gap) {
	g.gaps = append(g.gaps, gaps...)
	g.index()
}

// index builds the merged ranges and the counts from g.gaps.
func (g *gapSet) index() {
	g.seqs = g.seqs[:0]
	g.versions = map[string][]span{}
	g.removed = map[string]int64{}
	g.total = 0
	for _, gp := range g.gaps {
		g.seqs = append(g.seqs, span{gp.First, gp.Last})
		g.versions[gp.Stream] = append(g.versions[gp.Stream], span{gp.FirstVersion, gp.LastVersion})
		g.removed[gp.Stream] += gp.Events
		g.total += gp.Events
	}
	g.seqs = merge(g.seqs)
	for st, v := range g.versions {
		g.versions[st] = merge(v)
	}
}

// merge sorts spans and merges those that overlap or touch.
func merge(spans []span) []span {
	slices.SortFunc(spans, func(a, b span) int { return cmp.Or(cmp.Compare(a.Lo, b.Lo), cmp.Compare(a.Hi, b.Hi)) })
	out := spans[:0]
	for _, s := range spans {
		if n := len(out); n > 0 && s.Lo <= out[n-1].Hi {
			out[n-1].Hi = max(out[n-1].Hi, s.Hi)
			continue
		}
		out = append(out, s)
	}
	return out
}

// uncovered counts the positions after prev and before next that no span
// of spans covers, and returns the first of them (0 when none).
func uncovered(spans []span, prev, next int64) (n, first int64) {
	pos := prev + 1 // the first position not yet accounted for
	i := sort.Search(len(spans), func(i int) bool { return spans[i].Hi >= pos })
	for ; pos < next && i < len(spans); i++ {
		s := spans[i]
		if s.Lo+1 > pos { // positions pos .. s.Lo are not covered
			end := min(s.Lo+1, next)
			if end > pos {
				if n == 0 {
					first = pos
				}
				n += end - pos
			}
		}
		pos = max(pos, s.Hi+1)
	}
	if pos < next {
		if n == 0 {
			first = pos
		}
		n += next - pos
	}
	return n, first
}

// missing counts the sequences after prev and before next that no record
// declares removed, and returns the first of them (0 when none). A nil
// gapSet declares none.
func (g *gapSet) missing(prev, next int64) (n, first int64) {
	if g == nil {
		return uncovered(nil, prev, next)
	}
	return uncovered(g.seqs, prev, next)
}

// missingVersions is missing for the versions of stream.
func (g *gapSet) missingVersions(stream string, prev, next int64) (n, first int64) {
	if g == nil {
		return uncovered(nil, prev, next)
	}
	return uncovered(g.versions[stream], prev, next)
}

// removedFrom returns how many events the records declare removed: from
// stream, or from the whole log when stream is "".
func (g *gapSet) removedFrom(stream string) int64 {
	if g == nil {
		return 0
	}
	if stream == "" {
		return g.total
	}
	return g.removed[stream]
}

// records returns how many gaps are recorded.
func (g *gapSet) records() int {
	if g == nil {
		return 0
	}
	return len(g.gaps)
}

// same reports whether g and o record the same removals (a compaction
// that ran between two reads changes the count or the total).
func (g *gapSet) same(o *gapSet) bool {
	return g.records() == o.records() && g.removedFrom("") == o.removedFrom("")
}
