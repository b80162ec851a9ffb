ALTER TABLE messages
  DROP KEY messages_channel_seq,
  ADD KEY messages_channel_seq (tenant_id, channel, seq);
