-- Drop index "idx_message_chunks_message" from table: "projection_message_chunks"
DROP INDEX `idx_message_chunks_message`;
-- Drop "projection_messages_live" view
DROP VIEW projection_messages_live;
-- Create "projection_messages_live" view
CREATE VIEW projection_messages_live AS
SELECT m.message_id,
  CASE WHEN m.streaming THEN COALESCE((SELECT MAX(c.sequence) FROM projection_message_chunks c
    WHERE c.sequence > m.added_sequence AND c.message_id = m.message_id), m.last_sequence) ELSE m.last_sequence END AS last_sequence,
  m.thread_id, m.turn_id, m.role,
  CASE WHEN m.streaming THEN m.text || COALESCE((SELECT string_agg(c.text, '' ORDER BY c.sequence)
    FROM projection_message_chunks c WHERE c.sequence > m.added_sequence AND c.message_id = m.message_id), '') ELSE m.text END AS text,
  m.streaming, m.added_sequence, m.created_at,
  CASE WHEN m.streaming THEN COALESCE((SELECT c.updated_at FROM projection_message_chunks c
    WHERE c.sequence > m.added_sequence AND c.message_id = m.message_id ORDER BY c.sequence DESC LIMIT 1), m.updated_at) ELSE m.updated_at END AS updated_at
FROM projection_messages m;
