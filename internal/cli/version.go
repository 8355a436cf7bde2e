package cli

import (
	"runtime/debug"
	"strings"
)

// versionLine returns what `peon-store --version` prints after the
// program's name: the module version, the VCS revision the binary was
// built from (with its commit time, and "modified" when the tree had
// uncommitted changes), and the Go release, all from the build info that
// the go command stamps into the binary. A binary built without VCS
// stamping (-buildvcs=false, or from a module download) says "unknown
// revision".
func versionLine(info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return "unknown version, unknown revision"
	}
	version := info.Main.Version
	if version == "" {
		version = "unknown version"
	}
	var revision, at string
	modified := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var b strings.Builder
	b.WriteString(version)
	if revision == "" {
		b.WriteString(", unknown revision")
	} else {
		b.WriteString(", revision " + revision)
		var notes []string
		if at != "" {
			notes = append(notes, at)
		}
		if modified {
			notes = append(notes, "modified")
		}
		if len(notes) > 0 {
			b.WriteString(" (" + strings.Join(notes, ", ") + ")")
		}
	}
	if info.GoVersion != "" {
		b.WriteString(", " + info.GoVersion)
	}
	return b.String()
}

// buildVersion is versionLine of this binary's build info.
func buildVersion() string { return versionLine(debug.ReadBuildInfo()) }
