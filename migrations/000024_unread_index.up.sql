-- Unread counts read only the (channel, seq) index: it holds the sender
-- and the deletion time too, so that counting a channel's messages of
-- others after a read cursor (up to 1,000 of them, at every connect) reads
-- no table row.
ALTER TABLE messages
  DROP KEY messages_channel_seq,
  ADD KEY messages_channel_seq (tenant_id, channel, seq, from_user, deleted_at);
