package persistence_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/persistence/persistencetest"
)

// stallingReader hands out data in one Read, then tells started and
// blocks until release is closed, as a pipe whose writer stalled.
type stallingReader struct {
	data    []byte
	started chan struct{}
	release chan struct{}
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	close(r.started)
	<-r.release
	return 0, context.Canceled
}

// TestImportCutShortMidLine: an import whose context ends while its input
// has stalled in the middle of a line fails with the context's error, not
// with the parse error of the half line it holds, and imports nothing.
func TestImportCutShortMidLine(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	src, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer src.Close()
	_, err = src.Append(ctx, nil, persistencetest.Catalogue()...)
	require.NoError(t, err)
	var buf bytes.Buffer
	_, err = src.Export(ctx, &buf, nil)
	require.NoError(t, err)
	half := buf.Bytes()[:buf.Len()-buf.Len()/10] // the last line cut in two

	dst, err := persistence.OpenMemory(ctx)
	require.NoError(t, err)
	defer dst.Close()
	r := &stallingReader{data: half, started: make(chan struct{}), release: make(chan struct{})}
	defer close(r.release)
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-r.started // the half line has been handed over
		cancel()
	}()
	_, err = dst.Import(ictx, r, nil)
	require.ErrorIs(t, err, context.Canceled)
	head, err := dst.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)
}
