-- atlas:nolint destructive
-- A message.delta is no longer copied into projection_message_chunks: its
-- text stays in the log, where the view and the reader find it, and
-- message.completed folds it from there. Every chunk row was a copy of
-- deltas that the events table holds, so dropping the table loses nothing.
-- Drop "projection_messages_live" view
DROP VIEW projection_messages_live;
-- Drop "projection_message_chunks" table
DROP TABLE `projection_message_chunks`;
-- Create "projection_messages_live" view
CREATE VIEW projection_messages_live AS
SELECT m.message_id,
  CASE WHEN m.streaming THEN COALESCE((SELECT e.sequence FROM events e
    WHERE e.stream_id = 'thread:' || m.thread_id
      AND e.stream_version > (SELECT a.stream_version FROM events a WHERE a.sequence = m.added_sequence)
      AND e.sequence > m.added_sequence
      AND e.event_type = 'message.delta'
      AND CASE WHEN json_valid(e.payload) THEN e.payload ->> 'message_id' = m.message_id AND e.payload ->> 'turn_id' = m.turn_id END ORDER BY e.stream_version DESC LIMIT 1), m.last_sequence) ELSE m.last_sequence END AS last_sequence,
  m.thread_id, m.turn_id, m.role,
  CASE WHEN m.streaming THEN m.text || COALESCE((SELECT string_agg(e.payload ->> 'delta', '' ORDER BY e.sequence)
    FROM events e WHERE e.stream_id = 'thread:' || m.thread_id
      AND e.stream_version > (SELECT a.stream_version FROM events a WHERE a.sequence = m.added_sequence)
      AND e.sequence > m.added_sequence
      AND e.event_type = 'message.delta'
      AND CASE WHEN json_valid(e.payload) THEN e.payload ->> 'message_id' = m.message_id AND e.payload ->> 'turn_id' = m.turn_id END), '') ELSE m.text END AS text,
  m.streaming, m.added_sequence, m.created_at,
  CASE WHEN m.streaming THEN COALESCE((SELECT e.occurred_at FROM events e
    WHERE e.stream_id = 'thread:' || m.thread_id
      AND e.stream_version > (SELECT a.stream_version FROM events a WHERE a.sequence = m.added_sequence)
      AND e.sequence > m.added_sequence
      AND e.event_type = 'message.delta'
      AND CASE WHEN json_valid(e.payload) THEN e.payload ->> 'message_id' = m.message_id AND e.payload ->> 'turn_id' = m.turn_id END ORDER BY e.stream_version DESC LIMIT 1), m.updated_at) ELSE m.updated_at END AS updated_at
FROM projection_messages m;
