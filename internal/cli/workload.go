package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/peonhq/peon/internal/workload"
	"github.com/peonhq/peon/persistence"
)

// workloadJSON is the report of demo --agents N --hours H --json.
type workloadJSON struct {
	Seed             uint64  `json:"seed"`
	Agents           int     `json:"agents"`
	Hours            float64 `json:"hours"`
	Events           int     `json:"events"`
	Appends          int     `json:"appends"`
	Start            string  `json:"start"`
	End              string  `json:"end"`
	Projects         int     `json:"projects"`
	DeletedProjects  int     `json:"deleted_projects"`
	Threads          int     `json:"threads"`
	ArchivedThreads  int     `json:"archived_threads"`
	DeletedThreads   int     `json:"deleted_threads"`
	Turns            int     `json:"turns"`
	FailedTurns      int     `json:"failed_turns"`
	InterruptedTurns int     `json:"interrupted_turns"`
	Messages         int     `json:"messages"`
	Deltas           int     `json:"deltas"`
	Checkpoints      int     `json:"checkpoints"`
	Reverts          int     `json:"reverts"`
	Store            string  `json:"store"`
	ElapsedSeconds   float64 `json:"elapsed_seconds"`
}

// runWorkload writes the long multi-agent workload of demo --agents N
// --hours H and says what it wrote.
func (a *app) runWorkload(ctx context.Context, s *persistence.Store, o workload.Options, asJSON bool) error {
	rep, err := workload.Generate(ctx, s, o)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(a.stdout, workloadJSON{Seed: rep.Seed, Agents: rep.Agents, Hours: rep.Hours, Events: rep.Events, Appends: rep.Appends,
			Start: rep.Start.Format(time.RFC3339), End: rep.End.Format(time.RFC3339),
			Projects: rep.Projects, DeletedProjects: rep.DeletedProjects,
			Threads: rep.Threads, ArchivedThreads: rep.ArchivedThreads, DeletedThreads: rep.DeletedThreads,
			Turns: rep.Turns, FailedTurns: rep.FailedTurns, InterruptedTurns: rep.InterruptedTurns,
			Messages: rep.Messages, Deltas: rep.Deltas, Checkpoints: rep.Checkpoints, Reverts: rep.Reverts,
			Store: s.Target().Display, ElapsedSeconds: rep.Elapsed.Seconds()})
	}
	el := rep.Elapsed
	fmt.Fprintf(a.stdout, "Wrote %d events in %d appends to %s (seed %d) in %s (%s events/s):\n",
		rep.Events, rep.Appends, s.Target().Display, rep.Seed, el.Round(time.Millisecond), rate(int64(rep.Events), el))
	fmt.Fprintf(a.stdout, "  %d agent%s over %g hour%s of simulated time, %s to %s;\n", rep.Agents, plural(rep.Agents), rep.Hours, hoursPlural(rep.Hours), rep.Start.Format(timeLayout), rep.End.Format(timeLayout))
	fmt.Fprintf(a.stdout, "  %d projects (%d deleted), %d threads (%d archived, %d deleted);\n",
		rep.Projects, rep.DeletedProjects, rep.Threads, rep.ArchivedThreads, rep.DeletedThreads)
	fmt.Fprintf(a.stdout, "  %d turns (%d failed, %d interrupted), %d messages, %d streamed deltas, %d checkpoints, %d reverts.\n",
		rep.Turns, rep.FailedTurns, rep.InterruptedTurns, rep.Messages, rep.Deltas, rep.Checkpoints, rep.Reverts)
	return nil
}

func hoursPlural(h float64) string {
	if h == 1 {
		return ""
	}
	return "s"
}
