package workload

// The texts a workload draws from.

var projectNames = []string{"peon", "billing-api", "docs-site", "mobile-app", "infra", "data-pipeline", "auth-service", "web-console"}

var models = []string{"gpt-5-codex", "claude-sonnet-4.5", "o4-mini", "gemini-2.5-pro"}

var topics = []string{
	"Fix the flaky subscribe test", "Add pagination to the invoices endpoint", "Upgrade to Go 1.26",
	"Write the getting-started page", "Speed up the CI cache", "Migrate the users table", "Review the retry logic",
	"Add metrics to the importer", "Remove the legacy config loader", "Investigate the memory leak",
	"Split the monolith's billing module", "Harden the webhook signature check", "Document the release process",
	"Add a dark theme", "Profile the search endpoint", "Port the scripts to the new runner",
}

var failures = []string{
	"provider error: 529 overloaded_error: the model is overloaded, try again in a minute",
	"provider error: 429 rate_limit_exceeded: too many requests",
	"sandbox: command timed out after 600s",
	"context window exceeded: 412,093 tokens of 400,000",
}

var commands = []string{"go test ./...", "git status", "rg -n TODO", "make lint", "go build ./...", "npm test", "cat go.mod", "ls -la internal"}

var words = []string{
	"the", "handler", "reads", "every", "row", "before", "it", "encodes", "them", "so", "large", "accounts", "time", "out",
	"I", "changed", "order", "register", "first", "then", "read", "no", "append", "can", "slip", "through", "unnoticed",
	"suite", "passes", "with", "-race", "now", "cursor", "is", "pair", "of", "created_at", "and", "id", "encoded", "as",
	"an", "opaque", "string", "page", "holds", "rows", "by", "default", "next", "field", "updated", "OpenAPI", "document",
	"client", "two", "call", "sites", "needed", "new", "signature", "`go vet`", "linters", "are", "clean", "on", "version",
	"benchmark", "uses", "b.Loop", "timings", "comparable", "last", "release", "draft", "has", "three", "steps", "install",
	"one", "command", "open", "project", "start", "thread", "send", "prompt", "configuration", "section", "links", "to",
	"reference", "instead", "each", "step", "ends", "what", "reader", "should", "see", "test", "fails", "because", "lock",
	"is", "taken", "after", "snapshot", "which", "means", "writer", "may", "commit", "in", "between", "fixed", "moving",
	"check", "inside", "transaction", "migration", "adds", "column", "backfills", "it", "batches", "of", "10,000",
	"func", "main()", "return", "err", "nil", "context.Context", "struct", "interface", "package", "import", "defer",
}
