# Atlas project file, for operators and developers who have the official
# `atlas` CLI. The same migration directories are applied by peon itself at
# start-up (persistence.Open) and recorded in atlas_schema_revisions in the
# CLI's format, so either may migrate a database and the other sees it as
# up to date.
#
#   atlas migrate diff  --env sqlite            # expect: no changes
#   atlas migrate lint  --env sqlite --latest 1
#   atlas migrate apply --env sqlite --url "sqlite://$HOME/.local/share/peon/peon.db"
#   atlas migrate status --env postgres --url "postgres://…/peon?search_path=public&sslmode=disable"
#
# On build machines without the CLI, `go -C tools tool task migrate:diff NAME=…`,
# `migrate:lint` and `verify` do the same work with the Atlas Go library.

locals {
  # The database to migrate; override with --url.
  url = getenv("PEON_ATLAS_URL")
}

env "sqlite" {
  src = "ent://ent/schema"
  dev = "sqlite://dev?mode=memory&_fk=1"
  url = local.url
  migration {
    dir = "file://migrations/sqlite"
  }
}

env "postgres" {
  src = "ent://ent/schema"
  # A throwaway database on a server you own (or docker://postgres/15/dev).
  dev = getenv("PEON_DEV_POSTGRES_URL")
  # Use a URL bound to one schema (search_path=public): peon keeps its
  # tables and atlas_schema_revisions in that schema.
  url = local.url
  migration {
    dir              = "file://migrations/postgres"
    revisions_schema = "public"
  }
}
