package persistencetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// collect drains a sequence, failing the test on an error.
func collect(t *testing.T, seq func(func(persistence.Recorded, error) bool)) []persistence.Recorded {
	t.Helper()
	var out []persistence.Recorded
	for rec, err := range seq {
		require.NoError(t, err)
		out = append(out, rec)
	}
	return out
}

func sequences(recs []persistence.Recorded) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Sequence
	}
	return out
}

func runStore(t *testing.T, h Harness) {
	t.Run("EmptyReplay", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		require.Empty(t, collect(t, s.store.ReplayAll(s.ctx)))
		head, err := s.store.Head(s.ctx)
		require.NoError(t, err)
		require.Zero(t, head)
	})

	t.Run("AppendOneRoundTrips", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		e := orchestration.ProjectCreated{ProjectID: "p1", Name: "peon", WorkspaceRoot: "/src/peon", At: T0}
		before := time.Now().UTC().Truncate(time.Microsecond)
		recs, err := s.store.Append(s.ctx, &persistence.AppendOpts{CorrelationID: "corr", CausationID: "cause"}, e)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		got := collect(t, s.store.ReplayAll(s.ctx))
		require.Len(t, got, 1)
		r := got[0]
		require.Equal(t, int64(1), r.Sequence)
		require.Equal(t, "project:p1", r.StreamID)
		require.Equal(t, int64(1), r.StreamVersion)
		require.Equal(t, orchestration.TypeProjectCreated, r.Type)
		require.Equal(t, 1, r.SchemaVersion)
		require.Equal(t, e, r.Event.(orchestration.ProjectCreated))
		require.Equal(t, T0, r.OccurredAt)
		require.Len(t, r.EventID, 36)
		require.Equal(t, "corr", r.CorrelationID)
		require.Equal(t, "cause", r.CausationID)
		require.Empty(t, r.CommandID)
		require.False(t, r.RecordedAt.Before(before), "recorded_at %v before %v", r.RecordedAt, before)
		require.Equal(t, time.UTC, r.RecordedAt.Location())
		require.JSONEq(t, `{"project_id":"p1","name":"peon","workspace_root":"/src/peon","at":"2026-11-28T09:00:00.123456789Z"}`, string(r.Payload))
		require.Equal(t, recs[0].EventID, r.EventID)
		require.Equal(t, recs[0].RecordedAt, r.RecordedAt)
		head, err := s.store.Head(s.ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), head)
	})

	t.Run("CatalogueRoundTrips", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		events := Catalogue()
		types := map[string]bool{}
		for _, e := range events {
			types[e.EventType()] = true
		}
		require.Equal(t, orchestration.Types(), slices.Sorted(func(yield func(string) bool) {
			for k := range types {
				if !yield(k) {
					return
				}
			}
		}), "the fixture covers every catalogued type")
		_, err := s.store.Append(s.ctx, nil, events...)
		require.NoError(t, err)
		got := collect(t, s.store.ReplayAll(s.ctx))
		require.Len(t, got, len(events))
		for i, r := range got {
			require.Equal(t, events[i], r.Event, "event %d (%s)", i, events[i].EventType())
			require.Equal(t, events[i].EventType(), r.Type)
		}
	})

	t.Run("NonUTCTimesAreStoredInUTC", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		zone := time.FixedZone("CET", 3600)
		e := orchestration.ProjectCreated{ProjectID: "p1", Name: "n", WorkspaceRoot: "/w", At: T0.In(zone)}
		recs, err := s.store.Append(s.ctx, nil, e)
		require.NoError(t, err)
		want := orchestration.ProjectCreated{ProjectID: "p1", Name: "n", WorkspaceRoot: "/w", At: T0}
		require.Equal(t, want, recs[0].Event)
		got := collect(t, s.store.ReplayAll(s.ctx))
		require.Equal(t, want, got[0].Event)
	})

	t.Run("BatchIsContiguousWithStreamVersions", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[:2]...)
		require.NoError(t, err)
		recs, err := s.store.Append(s.ctx, nil, Catalogue()[2:7]...)
		require.NoError(t, err)
		require.Equal(t, []int64{3, 4, 5, 6, 7}, sequences(recs))
		for i, r := range recs {
			require.Equal(t, "thread:t1", r.StreamID)
			require.Equal(t, int64(i+1), r.StreamVersion)
		}
		// A batch over two streams numbers each stream on its own.
		recs, err = s.store.Append(s.ctx, nil,
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "x", At: T0},
			orchestration.ThreadRenamed{ThreadID: "t1", Title: "y", At: T0},
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "z", At: T0})
		require.NoError(t, err)
		require.Equal(t, []int64{8, 9, 10}, sequences(recs))
		require.Equal(t, []int64{3, 6, 4}, []int64{recs[0].StreamVersion, recs[1].StreamVersion, recs[2].StreamVersion})
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, sequences(collect(t, s.store.ReplayAll(s.ctx))))
	})

	t.Run("LargeBatch", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		// More rows than one INSERT statement carries.
		recs, err := s.store.Append(s.ctx, nil, Deltas("big", 2500)...)
		require.NoError(t, err)
		require.Len(t, recs, 2502)
		got := collect(t, s.store.ReplayAll(s.ctx))
		require.Len(t, got, 2502)
		for i, r := range got {
			require.Equal(t, int64(i+1), r.Sequence)
			require.Equal(t, int64(i+1), r.StreamVersion)
			require.Equal(t, recs[i].EventID, r.EventID)
		}
	})

	t.Run("ReplayFromFilters", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Deltas("t", 2500)...)
		require.NoError(t, err)
		for _, from := range []int64{-5, 0, 1, 2, 999, 1000, 1001, 2502, 2503, 9999} {
			got := sequences(collect(t, s.store.ReplayFrom(s.ctx, from)))
			first := max(from, 1)
			want := []int64{}
			for q := first; q <= 2502; q++ {
				want = append(want, q)
			}
			require.Equal(t, want, got, "from %d", from)
		}
	})

	t.Run("ReadStream", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()...)
		require.NoError(t, err)
		got := collect(t, s.store.ReadStream(s.ctx, "project:p1", 1))
		require.Len(t, got, 3)
		require.Equal(t, []int64{1, 2, 20}, sequences(got))
		got = collect(t, s.store.ReadStream(s.ctx, "thread:t1", 15))
		require.Len(t, got, 2)
		require.Equal(t, orchestration.TypeThreadArchived, got[0].Type)
		require.Empty(t, collect(t, s.store.ReadStream(s.ctx, "thread:none", 1)))
		require.Empty(t, collect(t, s.store.ReadStream(s.ctx, "project:p1' OR '1'='1", 0)))
	})

	t.Run("VersionConflictWritesNothing", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"project:p1": persistence.NoStream}}, Catalogue()[:2]...)
		require.NoError(t, err)
		_, err = s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"project:p1": 1}},
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "late", At: T0},
			orchestration.SettingChanged{Key: "k", Value: []byte("1"), At: T0})
		require.ErrorIs(t, err, persistence.ErrVersionConflict)
		var vc *persistence.VersionConflictError
		require.ErrorAs(t, err, &vc)
		require.Equal(t, persistence.VersionConflictError{Stream: "project:p1", Expected: 1, Actual: 2}, *vc)
		require.Contains(t, err.Error(), "project:p1")
		_, err = s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"project:p1": persistence.NoStream}},
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "late", At: T0})
		require.ErrorIs(t, err, persistence.ErrVersionConflict)
		// A stream named only in ExpectedVersions is checked too.
		_, err = s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"thread:t9": 3}},
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "late", At: T0})
		require.ErrorIs(t, err, persistence.ErrVersionConflict)
		require.Len(t, collect(t, s.store.ReplayAll(s.ctx)), 2)
		head, err := s.store.Head(s.ctx)
		require.NoError(t, err)
		require.Equal(t, int64(2), head)
		// The right version succeeds and takes the next sequence.
		recs, err := s.store.Append(s.ctx, &persistence.AppendOpts{ExpectedVersions: map[string]int64{"project:p1": 2}},
			orchestration.ProjectRenamed{ProjectID: "p1", Name: "ok", At: T0})
		require.NoError(t, err)
		require.Equal(t, int64(3), recs[0].Sequence)
	})

	t.Run("CommandIDIsIdempotent", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		opts := &persistence.AppendOpts{CommandID: "cmd-1", CorrelationID: "c"}
		first, err := s.store.Append(s.ctx, opts, Catalogue()[:3]...)
		require.NoError(t, err)
		again, err := s.store.Append(s.ctx, opts, Catalogue()[:3]...)
		require.NoError(t, err)
		require.Equal(t, first, again)
		// Other events under the same command id are refused (see
		// Admission/CommandIDIsBoundToItsEvents).
		_, err = s.store.Append(s.ctx, opts, orchestration.ProjectRenamed{ProjectID: "p1", Name: "other", At: T0})
		require.ErrorIs(t, err, persistence.ErrCommandConflict)
		require.Len(t, collect(t, s.store.ReplayAll(s.ctx)), 3)
		// Even an expectation that no longer holds: the command was done.
		again, err = s.store.Append(s.ctx, &persistence.AppendOpts{CommandID: "cmd-1", ExpectedVersions: map[string]int64{"project:p1": persistence.NoStream}}, Catalogue()[:3]...)
		require.NoError(t, err)
		require.Equal(t, first, again)
		if h.Durable {
			require.NoError(t, s.store.Close())
			reopened := h.open(t, s.dsn)
			again, err = reopened.Append(s.ctx, opts, Catalogue()[:3]...)
			require.NoError(t, err)
			require.Equal(t, first, again)
			require.Len(t, collect(t, reopened.ReplayAll(s.ctx)), 3)
		}
	})

	t.Run("InvalidEventWritesNothing", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil,
			orchestration.ProjectCreated{ProjectID: "p1", Name: "n", WorkspaceRoot: "/w", At: T0},
			orchestration.MessageAdded{ThreadID: "t", TurnID: "u", MessageID: "m", Role: "robot", At: T0})
		require.ErrorIs(t, err, persistence.ErrInvalidEvent)
		var ie *persistence.InvalidEventError
		require.ErrorAs(t, err, &ie)
		require.Equal(t, 1, ie.Index)
		require.Equal(t, orchestration.TypeMessageAdded, ie.Type)
		var fe *orchestration.FieldError
		require.ErrorAs(t, err, &fe)
		require.Equal(t, "role", fe.Field)
		require.Contains(t, err.Error(), "event 1 (message.added)")
		require.Empty(t, collect(t, s.store.ReplayAll(s.ctx)))
		_, err = s.store.Append(s.ctx, nil, nil)
		require.ErrorIs(t, err, persistence.ErrInvalidEvent)
		_, err = s.store.Append(s.ctx, nil, orchestration.MessageDelta{ThreadID: "t", TurnID: "u", MessageID: "m",
			Delta: string(make([]byte, persistence.MaxPayloadBytes)), At: T0})
		require.ErrorIs(t, err, persistence.ErrInvalidEvent)
		require.Contains(t, err.Error(), "limit")
		require.Empty(t, collect(t, s.store.ReplayAll(s.ctx)))
	})

	t.Run("UndecodableRowsAreReportedAndSkipped", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Catalogue()[:4]...)
		require.NoError(t, err)
		exec := func(q string) {
			_, err := s.store.Client().ExecContext(s.ctx, q)
			require.NoError(t, err)
		}
		exec("UPDATE events SET event_type = 'project.exploded' WHERE sequence = 2")
		if h.ValidatesJSON {
			exec(`UPDATE events SET payload = '{"thread_id": 42}' WHERE sequence = 3`)
		} else {
			exec(`UPDATE events SET payload = '{"thread_id": "t1", broken' WHERE sequence = 3`)
		}
		var seqs []int64
		var decodeErrs []*persistence.DecodeError
		for rec, err := range s.store.ReplayAll(s.ctx) {
			if err != nil {
				var de *persistence.DecodeError
				require.ErrorAs(t, err, &de)
				require.Nil(t, rec.Event)
				require.Equal(t, de.Sequence, rec.Sequence)
				decodeErrs = append(decodeErrs, de)
				continue
			}
			seqs = append(seqs, rec.Sequence)
		}
		require.Equal(t, []int64{1, 4}, seqs)
		require.Len(t, decodeErrs, 2)
		require.Equal(t, int64(2), decodeErrs[0].Sequence)
		require.Equal(t, "project.exploded", decodeErrs[0].Type)
		require.ErrorIs(t, decodeErrs[0], orchestration.ErrUnknownType)
		require.Equal(t, int64(3), decodeErrs[1].Sequence)
		require.Equal(t, orchestration.TypeThreadCreated, decodeErrs[1].Type)
		require.Contains(t, decodeErrs[1].Error(), "decode event 3 (thread.created)")
	})

	t.Run("ReplayStopsOnCancel", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Deltas("t", 3000)...)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(s.ctx)
		defer cancel()
		n := 0
		var last error
		for _, err := range s.store.ReplayAll(ctx) {
			if err != nil {
				last = err
				break
			}
			n++
			if n == 10 {
				cancel()
			}
		}
		require.ErrorIs(t, last, context.Canceled)
		require.Equal(t, 10, n, "no event is yielded after the context ends, even mid-page")
	})

	t.Run("BreakReleasesTheConnection", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		_, err := s.store.Append(s.ctx, nil, Deltas("t", 10)...)
		require.NoError(t, err)
		for range 20 { // more breaks than any pool has connections
			for _, err := range s.store.ReplayAll(s.ctx) {
				require.NoError(t, err)
				break
			}
			for _, err := range s.store.ReadStream(s.ctx, "thread:t", 1) {
				require.NoError(t, err)
				break
			}
		}
		// An append inside the loop body works too.
		for rec, err := range s.store.ReplayAll(s.ctx) {
			require.NoError(t, err)
			if rec.Sequence == 1 {
				_, err := s.store.Append(s.ctx, nil, orchestration.ThreadRenamed{ThreadID: "t", Title: "x", At: T0})
				require.NoError(t, err)
			}
		}
		require.Len(t, collect(t, s.store.ReplayAll(s.ctx)), 13)
	})

	t.Run("ConcurrentAppendersLoseNothing", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		const writers, batches = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers*batches)
		for w := range writers {
			wg.Go(func() {
				for b := range batches {
					n := 1 + (w+b)%4
					evs := make([]orchestration.Event, n)
					for i := range evs {
						evs[i] = orchestration.ThreadRenamed{ThreadID: fmt.Sprintf("w%d", w%3), Title: fmt.Sprintf("%d-%d-%d", w, b, i), At: T0}
					}
					recs, err := s.store.Append(s.ctx, nil, evs...)
					if err == nil {
						for i := 1; i < len(recs); i++ {
							if recs[i].Sequence != recs[i-1].Sequence+1 {
								err = fmt.Errorf("batch not contiguous: %v", sequences(recs))
							}
						}
					}
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		total := 0
		for err := range errs {
			require.NoError(t, err)
		}
		for w := range writers {
			for b := range batches {
				total += 1 + (w+b)%4
			}
		}
		got := collect(t, s.store.ReplayAll(s.ctx))
		require.Len(t, got, total)
		versions := map[string]int64{}
		for i, r := range got {
			require.Equal(t, int64(i+1), r.Sequence)
			versions[r.StreamID]++
			require.Equal(t, versions[r.StreamID], r.StreamVersion)
		}
	})

	t.Run("AppendTxCommitsAndRollsBackWithTheCaller", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		tx, err := s.store.Client().Tx(s.ctx)
		require.NoError(t, err)
		_, err = s.store.AppendTx(s.ctx, tx, nil, Catalogue()[0])
		require.NoError(t, err)
		require.NoError(t, tx.Rollback())
		require.Empty(t, collect(t, s.store.ReplayAll(s.ctx)))

		tx, err = s.store.Client().Tx(s.ctx)
		require.NoError(t, err)
		recs, err := s.store.AppendTx(s.ctx, tx, &persistence.AppendOpts{CommandID: "c"}, Catalogue()[:2]...)
		require.NoError(t, err)
		require.Equal(t, []int64{1, 2}, sequences(recs))
		require.NoError(t, tx.Commit())
		require.Len(t, collect(t, s.store.ReplayAll(s.ctx)), 2)
	})

	t.Run("AppendTxFailureLeavesNothingInTheCallersTx", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		tx, err := s.store.Client().Tx(s.ctx)
		require.NoError(t, err)
		// Make the projection step fail after the events were inserted.
		_, err = tx.ExecContext(s.ctx, "DROP TABLE settings")
		require.NoError(t, err)
		_, err = s.store.AppendTx(s.ctx, tx, nil, orchestration.SettingChanged{Key: "k", Value: []byte("1"), At: T0})
		require.Error(t, err)
		// The caller's transaction is still usable and holds no event of it.
		_, err = tx.ExecContext(s.ctx, "CREATE TABLE settings_gone (x integer)")
		require.NoError(t, err)
		require.NoError(t, tx.Commit())
		require.Empty(t, collect(t, s.store.ReplayAll(s.ctx)))
	})

	t.Run("ClosedStoreRefuses", func(t *testing.T) {
		t.Parallel()
		s := h.setup(t)
		require.NoError(t, s.store.Close())
		_, err := s.store.Append(s.ctx, nil, Catalogue()[0])
		require.ErrorIs(t, err, persistence.ErrClosed)
		for _, err := range s.store.ReplayAll(s.ctx) {
			require.True(t, errors.Is(err, persistence.ErrClosed))
		}
	})
}
