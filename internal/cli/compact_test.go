package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCompact(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var d demoJSON
	require.NoError(t, json.Unmarshal([]byte(e.ok("demo", "--seed", "1", "--threads", "3", "--turns", "4", "--json")), &d))

	// The demo's replies were completed in November 2026, over a day ago;
	// --until 1 folds nothing.
	none := e.ok("compact", "--until", "1")
	require.Regexp(t, `^Folded the deltas of 0 messages: 0 events and 0 B of payload removed, .* given back, in 0 transactions \(.*\)\.\n$`, none)

	js := e.ok("compact", "--json")
	keys := reportKeys(t, js)
	require.Equal(t, []string{"before", "bytes", "compactions", "elapsed_seconds", "events", "messages", "reclaimed", "until"}, keys)
	requireDocumented(t, keys)
	var rep compactJSON
	require.NoError(t, json.Unmarshal([]byte(js), &rep))
	require.Equal(t, compactJSON{Until: int64(d.Events), Before: rep.Before, Messages: 11, Events: 139, Bytes: rep.Bytes,
		Reclaimed: rep.Reclaimed, Compactions: 1, ElapsedSeconds: rep.ElapsedSeconds}, rep, "what stats counted (see TestStats)")
	require.Positive(t, rep.Bytes)
	require.NotNil(t, rep.Before)

	require.True(t, strings.HasPrefix(e.ok("verify"), "OK: "+itoa(d.Events-139)+" events"))
	again := e.ok("compact")
	require.Contains(t, again, "Folded the deltas of 0 messages")
}
