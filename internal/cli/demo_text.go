package cli

// The texts a demo session draws from.

var demoProjects = []struct{ name, root string }{
	{"peon", "/home/ana/src/peon"},
	{"billing-api", "/home/ana/src/billing-api"},
	{"docs-site", "/home/ana/src/docs-site"},
}

var demoModels = []string{"gpt-5-codex", "claude-sonnet-4.5", "o4-mini"}

type demoTopic struct {
	title   string
	prompts []string
	replies []string // sentences an assistant reply is made of
}

var demoTopics = []demoTopic{
	{"Fix the flaky subscribe test", []string{
		"TestSubscribe fails about one run in twenty on CI. Find out why.",
		"Make the fix, and keep the test's timeout as it is.",
		"Run the whole persistence suite with -race -count=20.",
		"Add a comment that explains the ordering guarantee.",
	}, []string{
		"The subscriber reads the head before it registers for wake-ups, so an append that lands in between is only seen on the next poll.",
		"I changed the order: register first, then read, so no append can slip through unnoticed.",
		"The suite passes 200 times in a row with -race now.",
		"The comment now says why the wake-up channel is taken before the read.",
	}},
	{"Add pagination to the invoices endpoint", []string{
		"GET /invoices returns every row. Add cursor pagination, 50 a page.",
		"Use the created_at and id pair as the cursor, not an offset.",
		"Update the OpenAPI document and the client.",
	}, []string{
		"The handler loads every invoice into memory before it encodes them, which is why large accounts time out.",
		"The cursor is the pair of created_at and id, encoded as an opaque base64 string.",
		"A page holds 50 rows by default and at most 200; the next cursor is in the response's `next` field.",
		"I updated the OpenAPI document and regenerated the client; two call sites needed the new signature.",
	}},
	{"Upgrade to Go 1.26", []string{
		"Move the module to Go 1.26 and fix what breaks.",
		"Replace the hand-written loops that the new iterators make simpler.",
		"Make sure the benchmarks still use b.Loop.",
	}, []string{
		"Only the go directive and two deprecated calls needed a change; everything else builds as it is.",
		"Four loops over maps became `for k := range maps.Keys(m)`, and the sorting helpers use slices.SortFunc.",
		"Every benchmark already uses b.Loop, so the timings are comparable with the last release.",
		"`go vet` and the linters are clean on the new version.",
	}},
	{"Write the getting-started page", []string{
		"Draft a getting-started page: install, first project, first thread.",
		"Shorten it; a newcomer should be done in five minutes.",
		"Add a screenshot placeholder after the second step.",
	}, []string{
		"The draft has three steps: install with one command, open a project, start a thread and send a first prompt.",
		"I cut the configuration section; it links to the reference page instead.",
		"Each step ends with what the reader should see, so they know it worked.",
		"The page now reads in about four minutes.",
	}},
	{"Speed up replay", []string{
		"Replaying a million events takes 20 s. Profile it.",
		"Decode the payloads without reflection on the hot path.",
		"Compare against the baseline and report events per second.",
	}, []string{
		"JSON decoding takes 56% of the replay in the profile, reading rows 33% and time parsing most of the rest.",
		"A generated decoder per event type removes the reflection; the payloads decode three times faster.",
		"Replay now runs at 140,000 events per second against 73,000 before, with the same flat memory.",
		"I kept the encoding/json path as the fallback for payloads of older schema versions.",
	}},
	{"Explain the retry logic", []string{
		"Explain how the HTTP client retries, in plain words.",
		"Is there a case where we retry a request that is not idempotent?",
	}, []string{
		"The client retries a failed request up to three times, waiting 200 ms, then 400 ms, then 800 ms, with some jitter.",
		"It only retries on connection errors and on 502, 503 and 504 answers.",
		"Yes: a POST that times out after the server received it is sent again, which can create a second invoice.",
		"An idempotency key on POST requests would make that retry safe.",
	}},
}

var demoFollowUps = []string{
	"Looks right. Now add a test for the edge case.",
	"Run the full test suite again.",
	"Tidy the commit: one change per commit, clear messages.",
	"What would break if we shipped this today?",
}

var demoOpenings = []string{
	"I read the code around it first.",
	"Let me look at how this is wired today.",
	"I started from the failing case.",
}

var demoSentences = []string{
	"I kept the public API as it is; only unexported code changed.",
	"The tests pass, with -race too.",
	"I did not touch the migrations: the schema needs no change for this.",
	"One question remains before this is done; I left it as a TODO in the code.",
}
