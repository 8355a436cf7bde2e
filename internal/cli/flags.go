package cli

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/peonhq/peon/orchestration"
)

// flagError turns pflag's account of a bad flag into what the flag
// wants: `invalid --limit "ten": want a whole number`, not strconv's
// parse error.
func flagError(_ *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		f := invalid.GetFlag()
		return usagef("invalid --%s %q: want %s", f.Name, invalid.GetValue(), wantValue(f, invalid.Unwrap()))
	}
	var missing *pflag.ValueRequiredError
	if errors.As(err, &missing) {
		f := missing.GetFlag()
		return usagef("--%s needs a value: %s", f.Name, valueName(f))
	}
	return &usageError{err}
}

// wantValue says what a flag of f's type takes, given why its value was
// refused.
func wantValue(f *pflag.Flag, cause error) string {
	typ := f.Value.Type()
	var num *strconv.NumError
	outOfRange := errors.As(cause, &num) && errors.Is(num.Err, strconv.ErrRange)
	switch {
	case strings.HasPrefix(typ, "uint"):
		if outOfRange {
			return "a whole number, at most " + strconv.FormatUint(math.MaxUint64>>(64-bits(typ)), 10)
		}
		return "a whole number of 0 or more"
	case strings.HasPrefix(typ, "int"):
		if outOfRange && strings.HasPrefix(num.Num, "-") {
			return "a whole number, at least " + strconv.FormatInt(math.MinInt64>>(64-bits(typ)), 10)
		}
		if outOfRange {
			return "a whole number, at most " + strconv.FormatInt(math.MaxInt64>>(64-bits(typ)), 10)
		}
		return "a whole number"
	case typ == "bool":
		return "true or false"
	case typ == "duration":
		return "a duration such as 90s or 1h30m"
	case strings.HasPrefix(typ, "float"):
		return "a number"
	}
	return fmt.Sprint(cause)
}

// bits returns the size of an integer flag type: 64 for int64, the
// platform's for int.
func bits(typ string) int {
	n, err := strconv.Atoi(strings.TrimLeft(typ, "uint"))
	if err != nil {
		return strconv.IntSize
	}
	return n
}

// valueName names what a flag takes: the `NAME` its usage quotes, or its
// type in words.
func valueName(f *pflag.Flag) string {
	if strings.Contains(f.Usage, "`") {
		name, _ := pflag.UnquoteUsage(f)
		return "a " + name
	}
	switch typ := f.Value.Type(); {
	case strings.HasPrefix(typ, "uint"):
		return "a whole number of 0 or more"
	case strings.HasPrefix(typ, "int"):
		return "a whole number"
	case strings.HasSuffix(typ, "Slice"):
		return "a comma-separated list"
	}
	return "a value"
}

// addJSONFlag adds --json to a command that prints a report.
func addJSONFlag(cmd *cobra.Command, asJSON *bool) {
	cmd.Flags().BoolVar(asJSON, "json", false, "print the report as one JSON object (fields in docs/CLI.md)")
}

// completeTypes completes --type with the catalogued event types, after
// the types already given before a comma.
func completeTypes(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	given, last := "", toComplete
	if i := strings.LastIndexByte(toComplete, ','); i >= 0 {
		given, last = toComplete[:i+1], toComplete[i+1:]
	}
	var out []string
	for _, t := range orchestration.Types() {
		if strings.HasPrefix(t, last) {
			out = append(out, given+t)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
