package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/orchestration"
	"github.com/peonhq/peon/persistence"
)

// eventsOpts are the flags of the events command.
type eventsOpts struct {
	from   int64
	stream string
	types  []string
	limit  int
	asJSON bool
	follow bool
}

func (a *app) eventsCommand() *cobra.Command {
	var o eventsOpts
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the event log, or follow it",
		Long: `events lists the log in sequence order: sequence, time, stream, version, type
and a summary of the data, in aligned columns (cut to the terminal's width on
a terminal), or with --json one JSON object per line in the export format.

--follow keeps printing events as they are appended, by this or any other
process, until interrupted (Ctrl-C). When a read fails (the server ended the
connection, restarted or failed over) it says so on stderr and tries again,
waiting 100 ms, then twice as long each time up to 5 s, and goes on after
the last event it printed: every event is printed once.`,
		Example: `  peon-store events --limit 20
  peon-store events --stream settings
  peon-store events --type turn.failed,turn.interrupted
  peon-store events --from 1000 --follow
  peon-store events --json | jq -c 'select(.type == "message.added") | .data.text'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.from < 1 {
				return usagef("--from must be a sequence of 1 or more")
			}
			if o.limit < 0 {
				return usagef("--limit must not be negative")
			}
			for _, t := range o.types {
				if !orchestration.Known(t) {
					return usagef("--type: unknown event type %q (known: %s)", t, strings.Join(orchestration.Types(), ", "))
				}
			}
			return a.events(cmd, o)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&o.from, "from", 1, "start at this `sequence`")
	f.StringVar(&o.stream, "stream", "", "only this stream, such as thread:ID, project:ID or settings")
	f.StringSliceVar(&o.types, "type", nil, "only these event types (comma-separated or repeated)")
	f.IntVar(&o.limit, "limit", 0, "print at most this many events (0: no limit)")
	f.BoolVar(&o.asJSON, "json", false, "print one JSON object per line")
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new events until interrupted")
	cmd.RegisterFlagCompletionFunc("type", completeTypes)
	return cmd
}

func (a *app) events(cmd *cobra.Command, o eventsOpts) error {
	ctx := cmd.Context()
	s, err := a.open(ctx, readOnly)
	if err != nil {
		return err
	}
	defer s.Close()

	var seq iter.Seq2[persistence.Recorded, error]
	switch {
	case o.follow:
		// Through lost connections too: each failed read is noted on
		// stderr and tried again, with backoff, from the event after the
		// last one printed.
		seq = s.SubscribeWith(ctx, o.from-1, &persistence.SubscribeOpts{Resume: true})
	case o.stream != "":
		seq = s.ReadStream(ctx, o.stream, 1)
	default:
		seq = s.ReplayFrom(ctx, o.from)
	}
	bw := bufio.NewWriterSize(a.stdout, 32<<10)
	defer bw.Flush()
	width := a.termWidth(a.stdout)
	if !o.asJSON {
		fmt.Fprintln(bw, cut(fmt.Sprintf(eventFormat, "SEQ", "AT", "STREAM", "VER", "TYPE", "SUMMARY"), width))
	}
	n := 0
	var line []byte
	for rec, err := range seq {
		var (
			de *persistence.DecodeError
			re *persistence.RetryError
		)
		if errors.As(err, &re) {
			fmt.Fprintf(a.stderr, "peon-store: events --follow: %s\n", oneLine(re.Error()))
			continue
		}
		if err != nil && !errors.As(err, &de) {
			return err
		}
		if rec.Sequence < o.from || (o.stream != "" && rec.StreamID != o.stream) ||
			(len(o.types) > 0 && !slices.Contains(o.types, rec.Type)) {
			continue
		}
		switch {
		case o.asJSON && de != nil:
			line = fmt.Appendf(line[:0], `{"sequence":%d,"stream":%s,"version":%d,"type":%s,"error":%s}`+"\n",
				rec.Sequence, quoteJSON(rec.StreamID), rec.StreamVersion, quoteJSON(rec.Type), quoteJSON(errString(de)))
		case o.asJSON:
			if line, err = persistence.AppendJSONL(line[:0], &rec); err != nil {
				return err
			}
		default:
			line = append(line[:0], cut(formatEvent(&rec, de), width)...)
			line = append(line, '\n')
		}
		if _, err := bw.Write(line); err != nil {
			return err
		}
		if o.follow {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		if n++; o.limit > 0 && n >= o.limit {
			break
		}
	}
	return bw.Flush()
}

// eventFormat lays out a line of the events listing.
const eventFormat = "%7s  %-23s  %-24s %4s  %-19s  %s"

// formatEvent is one line of the events listing.
func formatEvent(rec *persistence.Recorded, de *persistence.DecodeError) string {
	summary := "(cannot decode: " + oneLine(errString(de)) + ")"
	if de == nil {
		summary = summarize(rec.Event)
	}
	return fmt.Sprintf(eventFormat, strconv.FormatInt(rec.Sequence, 10), rec.OccurredAt.Format("2006-01-02 15:04:05.000"),
		rec.StreamID, strconv.FormatInt(rec.StreamVersion, 10), rec.Type, summary)
}

func errString(de *persistence.DecodeError) string {
	if de == nil || de.Err == nil {
		return ""
	}
	return de.Err.Error()
}

// summarize says in a few words what an event records.
func summarize(e orchestration.Event) string {
	q := strconv.Quote
	switch e := e.(type) {
	case orchestration.ProjectCreated:
		return q(e.Name) + " at " + e.WorkspaceRoot
	case orchestration.ProjectRenamed:
		return "renamed to " + q(e.Name)
	case orchestration.ProjectDeleted:
		return "deleted"
	case orchestration.ThreadCreated:
		return q(e.Title) + " in " + e.ProjectID + " with " + e.Model
	case orchestration.ThreadRenamed:
		return "renamed to " + q(e.Title)
	case orchestration.ThreadArchived:
		return "archived"
	case orchestration.ThreadDeleted:
		return "deleted"
	case orchestration.TurnStarted:
		return e.TurnID
	case orchestration.TurnCompleted:
		return e.TurnID
	case orchestration.TurnFailed:
		return e.TurnID + ": " + e.Error
	case orchestration.TurnInterrupted:
		return e.TurnID
	case orchestration.MessageAdded:
		s := e.MessageID + " " + string(e.Role)
		if e.Streaming {
			s += " (streaming)"
		}
		if e.Text != "" {
			s += " " + q(e.Text)
		}
		return s
	case orchestration.MessageDelta:
		return e.MessageID + " +" + q(e.Delta)
	case orchestration.MessageCompleted:
		return e.MessageID
	case orchestration.CheckpointCreated:
		return e.TurnID + " at " + shortRef(e.GitRef) + " " + q(e.Message)
	case orchestration.CheckpointReverted:
		return "back to " + shortRef(e.GitRef)
	case orchestration.SettingChanged:
		return e.Key + " = " + oneLine(string(e.Value))
	}
	b, _ := orchestration.Encode(e)
	return string(b)
}

// cut shortens s to width runes (no limit when width is 0).
func cut(s string, width int) string {
	if width <= 0 || len(s) <= width {
		return s
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width-1]) + "…"
}

// quoteJSON returns s as a JSON string.
func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
