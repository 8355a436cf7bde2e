package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/peonhq/peon/persistence"
	"github.com/peonhq/peon/projection"
)

// withView is withStore for the projection views: read-only, with a note
// on stderr when the projections stand behind the log, which a read-only
// command does not catch up.
func (a *app) withView(fn func(ctx context.Context, s *persistence.Store, args []string) error) func(*cobra.Command, []string) error {
	return a.withStore(readOnly, func(ctx context.Context, s *persistence.Store, args []string) error {
		head, err := s.Head(ctx)
		if err != nil {
			return err
		}
		rows, err := s.Client().QueryContext(ctx, "SELECT COALESCE(MIN(last_sequence), 0) FROM projection_state")
		if err != nil {
			return err
		}
		var low int64
		if rows.Next() {
			err = rows.Scan(&low)
		}
		if cerr := rows.Close(); err == nil {
			err = cmp.Or(cerr, rows.Err())
		}
		if err != nil {
			return fmt.Errorf("read projection state: %w", err)
		}
		if low < head {
			fmt.Fprintf(a.stderr, "peon-store: note: the projections stand at sequence %d, the log at %d; `peon-store rebuild` brings them up\n", low, head)
		}
		return fn(ctx, s, args)
	})
}

// timeLayout is how the human views show a time.
const timeLayout = "2006-01-02 15:04:05"

func (a *app) projectsCommand() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "projects",
		Short: "List the projects",
		Long: `projects lists the projects of the store as the projections show them, oldest
first, with how many threads each has. Deleted projects are left out unless
--all is given. --json prints one JSON object per project and line.`,
		Args: noArgs,
		RunE: a.withView(func(ctx context.Context, s *persistence.Store, _ []string) error {
			r := projection.NewReader(s)
			projects, err := r.Projects(ctx, &projection.ProjectFilter{IncludeDeleted: all})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLines(a.stdout, projects)
			}
			threads, err := r.Threads(ctx, &projection.ThreadFilter{IncludeArchived: true})
			if err != nil {
				return err
			}
			count := map[string]int{}
			for _, t := range threads {
				count[t.ProjectID]++
			}
			if len(projects) == 0 {
				fmt.Fprintln(a.stdout, "No projects. Write a demo session with `peon-store demo`.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECT\tNAME\tWORKSPACE\tTHREADS\tCREATED\tSTATE")
			for _, p := range projects {
				state := "active"
				if p.DeletedAt != nil {
					state = "deleted"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", p.ID, p.Name, p.WorkspaceRoot, count[p.ID], p.CreatedAt.Format(timeLayout), state)
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "include deleted projects")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

func (a *app) threadsCommand() *cobra.Command {
	var (
		f      projection.ThreadFilter
		all    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "threads",
		Short: "List the threads",
		Long: `threads lists the threads of the store as the projections show them, oldest
first: project, title, model, state, turns, messages and last change.
Archived and deleted threads are left out unless --all is given. --json
prints one JSON object per thread and line.`,
		Example: `  peon-store threads
  peon-store threads --project prj-1a2b3c4d5e6f --all
  peon-store threads --json | jq -r .title`,
		Args: noArgs,
		RunE: a.withView(func(ctx context.Context, s *persistence.Store, _ []string) error {
			f.IncludeArchived, f.IncludeDeleted = all, all
			r := projection.NewReader(s)
			threads, err := r.Threads(ctx, &f)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLines(a.stdout, threads)
			}
			if len(threads) == 0 {
				fmt.Fprintln(a.stdout, "No threads. Write a demo session with `peon-store demo`, or try --all.")
				return nil
			}
			names, err := projectNames(ctx, r)
			if err != nil {
				return err
			}
			writeThreads(a.stdout, threads, names, all)
			return nil
		}),
	}
	cmd.Flags().StringVar(&f.ProjectID, "project", "", "only the threads of this project `ID`")
	cmd.Flags().BoolVar(&all, "all", false, "include archived and deleted threads")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per line")
	return cmd
}

func (a *app) threadCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "thread ID",
		Short: "Show one thread: its turns, messages and checkpoints",
		Long: `thread prints the transcript of one thread as the projections show it: each
turn with its state, its messages in order and its checkpoint, then the
thread's checkpoints. --json prints the same as one JSON object.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("thread takes one thread ID (list them with `peon-store threads --all`)")
			}
			return nil
		},
		RunE: a.withView(func(ctx context.Context, s *persistence.Store, args []string) error {
			r := projection.NewReader(s)
			d, err := r.Thread(ctx, args[0])
			if errors.Is(err, projection.ErrNotFound) {
				return fmt.Errorf("no thread %q in %s; list them with `peon-store threads --all`", args[0], s.Target().Display)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONLines(a.stdout, []projection.ThreadDetail{d})
			}
			names, err := projectNames(ctx, r)
			if err != nil {
				return err
			}
			writeTranscript(a.stdout, d, names[d.ProjectID], a.wrapWidth())
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the thread as one JSON object")
	return cmd
}

// projectNames maps every project's id to its name.
func projectNames(ctx context.Context, r *projection.Reader) (map[string]string, error) {
	projects, err := r.Projects(ctx, &projection.ProjectFilter{IncludeDeleted: true})
	if err != nil {
		return nil, err
	}
	names := make(map[string]string, len(projects))
	for _, p := range projects {
		names[p.ID] = p.Name
	}
	return names, nil
}

// writeJSONLines prints each value as one line of JSON.
func writeJSONLines[T any](w io.Writer, values []T) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, v := range values {
		if err := enc.Encode(v); err != nil {
			return err
		}
	}
	return nil
}

// writeThreads prints threads as a table; withState adds archived and
// deleted to the state column.
func writeThreads(w io.Writer, threads []projection.Thread, projectNames map[string]string, withState bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "THREAD\tPROJECT\tTITLE\tMODEL\tSTATE\tTURNS\tMESSAGES\tUPDATED")
	for _, t := range threads {
		state := t.Status
		if withState && t.DeletedAt != nil {
			state = "deleted"
		} else if withState && t.ArchivedAt != nil {
			state = "archived"
		}
		project := cmp.Or(projectNames[t.ProjectID], t.ProjectID)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", t.ID, project, shorten(t.Title, 40), t.Model, state,
			t.TurnCount, t.MessageCount, t.UpdatedAt.Format(timeLayout))
	}
	tw.Flush()
}

// writeTranscript prints a thread: a header, each turn with its messages,
// and the checkpoints. Text is wrapped to width.
func writeTranscript(w io.Writer, d projection.ThreadDetail, projectName string, width int) {
	fmt.Fprintf(w, "Thread %s: %s\n", d.ID, d.Title)
	state := d.Status
	if d.DeletedAt != nil {
		state += ", deleted"
	} else if d.ArchivedAt != nil {
		state += ", archived"
	}
	fmt.Fprintf(w, "  project %s · model %s · %s · %d turns · %d messages · created %s\n",
		cmp.Or(projectName, d.ProjectID), d.Model, state, d.TurnCount, d.MessageCount, d.CreatedAt.Format(timeLayout))
	for _, t := range d.Turns {
		fmt.Fprintln(w)
		line := fmt.Sprintf("Turn %d · %s · %s", t.Ordinal, t.Status, t.StartedAt.Format(timeLayout))
		if t.EndedAt != nil {
			line += fmt.Sprintf(" (%s)", t.EndedAt.Sub(t.StartedAt).Round(100*time.Millisecond))
		}
		if t.CheckpointRef != "" {
			line += " · checkpoint " + shortRef(t.CheckpointRef)
		}
		fmt.Fprintln(w, line)
		for _, m := range t.Messages {
			text := m.Text
			if m.Streaming {
				text += " [streaming…]"
			}
			writeWrapped(w, fmt.Sprintf("  %-9s ", m.Role), text, width)
		}
		if t.Error != "" {
			writeWrapped(w, "  error     ", t.Error, width)
		}
	}
	if len(d.Checkpoints) > 0 {
		ordinal := make(map[string]int, len(d.Turns))
		for _, t := range d.Turns {
			ordinal[t.ID] = t.Ordinal
		}
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Checkpoints:")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, c := range d.Checkpoints {
			state := "kept"
			if c.RevertedAt != nil {
				state = "reverted " + c.RevertedAt.Format(timeLayout)
			}
			fmt.Fprintf(tw, "  %s\tturn %d\t%s\t%s\n", shortRef(c.GitRef), ordinal[c.TurnID], state, c.Message)
		}
		tw.Flush()
	}
}

// shortRef abbreviates a commit id as git does.
func shortRef(ref string) string {
	if len(ref) == 40 && strings.Trim(ref, "0123456789abcdef") == "" {
		return ref[:10]
	}
	return ref
}

// writeWrapped prints text after prefix, wrapped at width with the
// continuation lines indented as far as the prefix.
func writeWrapped(w io.Writer, prefix, text string, width int) {
	indent := strings.Repeat(" ", len([]rune(prefix)))
	room := max(width-len([]rune(prefix)), 20)
	for i, para := range strings.Split(text, "\n") {
		line, n := prefix, 0
		if i > 0 {
			line = indent
		}
		for _, word := range strings.Fields(para) {
			wl := len([]rune(word))
			if n > 0 && n+1+wl > room {
				fmt.Fprintln(w, strings.TrimRight(line, " "))
				line, n = indent, 0
			}
			if n > 0 {
				line += " "
				n++
			}
			line += word
			n += wl
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
}

// wrapWidth is the width transcripts are wrapped to: the terminal's, at
// most 100, or 80 when stdout is not a terminal.
func (a *app) wrapWidth() int {
	if w := a.termWidth(a.stdout); w > 0 {
		return min(w, 100)
	}
	return 80
}
