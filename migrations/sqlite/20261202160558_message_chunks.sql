-- Create "projection_message_chunks" table
CREATE TABLE `projection_message_chunks` (`sequence` integer NOT NULL, `message_id` text NOT NULL, `text` text NOT NULL, `updated_at` datetime NOT NULL, PRIMARY KEY (`sequence`));
-- Create index "idx_message_chunks_message" to table: "projection_message_chunks"
CREATE INDEX `idx_message_chunks_message` ON `projection_message_chunks` (`message_id`, `sequence`);
-- Create "projection_messages_live" view
CREATE VIEW projection_messages_live AS
SELECT m.message_id,
  CASE WHEN m.streaming THEN COALESCE((SELECT MAX(c.sequence) FROM projection_message_chunks c
    WHERE c.message_id = m.message_id), m.last_sequence) ELSE m.last_sequence END AS last_sequence,
  m.thread_id, m.turn_id, m.role,
  CASE WHEN m.streaming THEN m.text || COALESCE((SELECT string_agg(c.text, '' ORDER BY c.sequence)
    FROM projection_message_chunks c WHERE c.message_id = m.message_id), '') ELSE m.text END AS text,
  m.streaming, m.added_sequence, m.created_at,
  CASE WHEN m.streaming THEN COALESCE((SELECT c.updated_at FROM projection_message_chunks c
    WHERE c.message_id = m.message_id ORDER BY c.sequence DESC LIMIT 1), m.updated_at) ELSE m.updated_at END AS updated_at
FROM projection_messages m;
