-- Create "checkpoints" table
CREATE TABLE `checkpoints` (`id` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `last_sequence` integer NOT NULL, `thread_id` text NOT NULL, `turn_id` text NOT NULL, `git_ref` text NOT NULL, `message` text NOT NULL, `created_at` datetime NOT NULL, `reverted_at` datetime NULL);
-- Create index "idx_checkpoints_turn" to table: "checkpoints"
CREATE UNIQUE INDEX `idx_checkpoints_turn` ON `checkpoints` (`thread_id`, `turn_id`);
-- Create index "idx_checkpoints_ref" to table: "checkpoints"
CREATE INDEX `idx_checkpoints_ref` ON `checkpoints` (`thread_id`, `git_ref`);
-- Create "events" table
CREATE TABLE `events` (`sequence` integer NOT NULL PRIMARY KEY AUTOINCREMENT, `event_id` text NOT NULL, `stream_id` text NOT NULL, `stream_version` integer NOT NULL, `event_type` text NOT NULL, `schema_version` integer NOT NULL DEFAULT (1), `payload` text NOT NULL, `occurred_at` datetime NOT NULL, `recorded_at` datetime NOT NULL, `command_id` text NULL, `correlation_id` text NULL, `causation_id` text NULL);
-- Create index "events_event_id_key" to table: "events"
CREATE UNIQUE INDEX `events_event_id_key` ON `events` (`event_id`);
-- Create index "idx_events_stream" to table: "events"
CREATE UNIQUE INDEX `idx_events_stream` ON `events` (`stream_id`, `stream_version`);
-- Create index "idx_events_command" to table: "events"
CREATE INDEX `idx_events_command` ON `events` (`command_id`) WHERE command_id IS NOT NULL;
-- Create index "idx_events_correlation" to table: "events"
CREATE INDEX `idx_events_correlation` ON `events` (`correlation_id`) WHERE correlation_id IS NOT NULL;
-- Create "projection_messages" table
CREATE TABLE `projection_messages` (`message_id` text NOT NULL, `last_sequence` integer NOT NULL, `thread_id` text NOT NULL, `turn_id` text NOT NULL, `role` text NOT NULL, `text` text NOT NULL, `streaming` bool NOT NULL, `added_sequence` integer NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, PRIMARY KEY (`message_id`));
-- Create index "idx_messages_turn" to table: "projection_messages"
CREATE INDEX `idx_messages_turn` ON `projection_messages` (`turn_id`);
-- Create "projection_projects" table
CREATE TABLE `projection_projects` (`project_id` text NOT NULL, `last_sequence` integer NOT NULL, `name` text NOT NULL, `workspace_root` text NOT NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `deleted_at` datetime NULL, PRIMARY KEY (`project_id`));
-- Create "projection_state" table
CREATE TABLE `projection_state` (`projector` text NOT NULL, `last_sequence` integer NOT NULL, `updated_at` datetime NOT NULL, PRIMARY KEY (`projector`));
-- Create "settings" table
CREATE TABLE `settings` (`key` text NOT NULL, `last_sequence` integer NOT NULL, `value` text NOT NULL, `updated_at` datetime NOT NULL, PRIMARY KEY (`key`));
-- Create "projection_threads" table
CREATE TABLE `projection_threads` (`thread_id` text NOT NULL, `last_sequence` integer NOT NULL, `project_id` text NOT NULL, `title` text NOT NULL, `model` text NOT NULL, `status` text NOT NULL, `turn_count` integer NOT NULL, `message_count` integer NOT NULL, `latest_turn_id` text NULL, `created_at` datetime NOT NULL, `updated_at` datetime NOT NULL, `archived_at` datetime NULL, `deleted_at` datetime NULL, PRIMARY KEY (`thread_id`));
-- Create index "idx_threads_project" to table: "projection_threads"
CREATE INDEX `idx_threads_project` ON `projection_threads` (`project_id`);
-- Create "projection_turns" table
CREATE TABLE `projection_turns` (`turn_id` text NOT NULL, `last_sequence` integer NOT NULL, `thread_id` text NOT NULL, `ordinal` integer NOT NULL, `status` text NOT NULL, `error` text NULL, `checkpoint_ref` text NULL, `started_at` datetime NOT NULL, `ended_at` datetime NULL, PRIMARY KEY (`turn_id`));
-- Create index "idx_turns_thread" to table: "projection_turns"
CREATE UNIQUE INDEX `idx_turns_thread` ON `projection_turns` (`thread_id`, `ordinal`);
