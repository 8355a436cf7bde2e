-- Create "stream_tombstones" table
CREATE TABLE "stream_tombstones" ("stream_id" character varying NOT NULL, "last_version" bigint NOT NULL, "first_sequence" bigint NOT NULL, "last_sequence" bigint NOT NULL, "events" bigint NOT NULL, "bytes" bigint NOT NULL, "pruned_at" timestamptz NOT NULL, PRIMARY KEY ("stream_id"));
-- Create index "idx_tombstones_sequence" to table: "stream_tombstones"
CREATE INDEX "idx_tombstones_sequence" ON "stream_tombstones" ("last_sequence");
