-- Undo 000002_moderation. Deleted messages go with their tombstones: the
-- old schema cannot tell them from live ones.
DELETE FROM messages WHERE deleted_at IS NOT NULL;
ALTER TABLE messages
  DROP KEY messages_user_ts,
  DROP KEY messages_channel_ts,
  DROP KEY messages_ts,
  ADD KEY messages_tenant_seq (tenant_id, seq),
  ADD KEY messages_channel_seq (tenant_id, channel, seq),
  ADD KEY messages_user_seq (tenant_id, from_user, seq),
  ADD KEY messages_ts (tenant_id, ts),
  DROP COLUMN deleted_at;
ALTER TABLE channels DROP COLUMN member_count;
DROP TABLE IF EXISTS sanctions;
DROP TABLE IF EXISTS ng_words;
DROP TABLE IF EXISTS ng_lists;
