# Atlas project file, for operators and developers who have an `atlas` CLI,
# the community build or the official one. The same migration directories
# are applied by peon itself at start-up (persistence.Open) and recorded in
# atlas_schema_revisions in the CLI's format, so either may migrate a
# database and the other sees it as up to date.
#
# Envs:
#   sqlite, postgres          desired state from migrations/schema/<dialect>.sql,
#                             the DDL `peon-migrate ddl` generates from the ent
#                             schemas (`task verify` fails when it is stale);
#                             works with the community and the official CLI.
#   sqlite-ent, postgres-ent  desired state read by the ent:// loader straight
#                             from ent/schema; official CLI only (the community
#                             build says "ent:// scheme is not supported by the
#                             community version").
# The postgres envs need PEON_DEV_POSTGRES_URL: an empty, throwaway database
# on a server you own, which Atlas fills and empties to compute diffs.
#
#   atlas migrate diff   --env sqlite                # expect: the directory is synced
#   atlas migrate lint   --env sqlite --latest 1
#   atlas schema diff    --env sqlite --from file://migrations/sqlite --to file://migrations/schema/sqlite.sql
#   PEON_DEV_POSTGRES_URL='postgres://…/peon_dev?sslmode=disable' atlas migrate diff --env postgres
#   atlas migrate apply  --env sqlite --url "sqlite://$HOME/.local/share/peon/peon.db"
#   atlas migrate status --env postgres --url "postgres://…/peon?search_path=public&sslmode=disable"
#
# On build machines without the CLI, `go -C tools tool task migrate:diff NAME=…`,
# `migrate:lint` and `verify` do the same work with the Atlas Go library.

locals {
  # The database to migrate; override with --url.
  url = getenv("PEON_ATLAS_URL")
  # A throwaway PostgreSQL database (or docker://postgres/15/dev).
  dev_postgres = getenv("PEON_DEV_POSTGRES_URL")
}

env "sqlite" {
  src = "file://migrations/schema/sqlite.sql"
  dev = "sqlite://dev?mode=memory&_fk=1"
  url = local.url
  migration {
    dir = "file://migrations/sqlite"
  }
}

env "postgres" {
  src = "file://migrations/schema/postgres.sql"
  dev = local.dev_postgres
  # Use a URL bound to one schema (search_path=public): peon keeps its
  # tables and atlas_schema_revisions in that schema.
  url = local.url
  migration {
    dir              = "file://migrations/postgres"
    revisions_schema = "public"
  }
}

env "sqlite-ent" {
  src = "ent://ent/schema"
  dev = "sqlite://dev?mode=memory&_fk=1"
  url = local.url
  migration {
    dir = "file://migrations/sqlite"
  }
}

env "postgres-ent" {
  src = "ent://ent/schema"
  dev = local.dev_postgres
  url = local.url
  migration {
    dir              = "file://migrations/postgres"
    revisions_schema = "public"
  }
}
