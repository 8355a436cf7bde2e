-- Create "compacted_commands" table
CREATE TABLE `compacted_commands` (`command_id` text NOT NULL, `events` integer NOT NULL, `compacted_at` datetime NOT NULL, PRIMARY KEY (`command_id`));
-- Create "compactions" table
CREATE TABLE `compactions` (`first_sequence` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `last_sequence` integer NOT NULL, `stream_id` text NOT NULL, `first_version` integer NOT NULL, `last_version` integer NOT NULL, `events` integer NOT NULL, `bytes` integer NOT NULL, `compacted_at` datetime NOT NULL);
-- Create index "idx_compactions_stream" to table: "compactions"
CREATE INDEX `idx_compactions_stream` ON `compactions` (`stream_id`, `first_version`);
