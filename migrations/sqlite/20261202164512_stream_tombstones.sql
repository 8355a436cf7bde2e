-- Create "stream_tombstones" table
CREATE TABLE `stream_tombstones` (`stream_id` text NOT NULL, `last_version` integer NOT NULL, `first_sequence` integer NOT NULL, `last_sequence` integer NOT NULL, `events` integer NOT NULL, `bytes` integer NOT NULL, `pruned_at` datetime NOT NULL, PRIMARY KEY (`stream_id`));
-- Create index "idx_tombstones_sequence" to table: "stream_tombstones"
CREATE INDEX `idx_tombstones_sequence` ON `stream_tombstones` (`last_sequence`);
