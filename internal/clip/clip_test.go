package clip

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClip(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("0123456789", 20)
	wide := strings.Repeat("é", 40) // 80 bytes
	for _, c := range []struct{ in, quote, str string }{
		{"", `""`, ""},
		{"thread:t1", `"thread:t1"`, "thread:t1"},
		{strings.Repeat("x", Max), `"` + strings.Repeat("x", Max) + `"`, strings.Repeat("x", Max)},
		{long, `"` + long[:48] + `"… (200 bytes)`, long[:48] + "… (200 bytes)"},
		{wide, `"` + wide[:48] + `"… (80 bytes)`, wide[:48] + "… (80 bytes)"},
		{"x" + wide, `"x` + wide[:46] + `"… (81 bytes)`, "x" + wide[:46] + "… (81 bytes)"},
		{"a\x00\xff" + long, `"a\x00\xff` + long[:45] + `"… (203 bytes)`, "a\x00\xff" + long[:45] + "… (203 bytes)"},
	} {
		require.Equal(t, c.quote, Quote(c.in), "Quote(%q)", c.in)
		require.Equal(t, c.str, String(c.in), "String(%q)", c.in)
	}
}
