-- Kaiwa's second schema: NG-word lists, sanctions (bans and mutes), message
-- tombstones, a member count per channel, and log indexes for the queries
-- operators run (by channel, by user and by time range, in time order).

-- A tenant's NG list: its words and its allow-list. The policy is in the
-- tenant's settings. entry is the UTF-8 text exactly as given, compared as
-- bytes: VARBINARY because MariaDB's utf8mb4_bin pads with spaces, which
-- would make "word" and "word " one entry. 256 bytes hold 64 characters.
CREATE TABLE ng_words (
  tenant_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind      ENUM('word', 'allow') CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  entry     VARBINARY(256) NOT NULL,
  PRIMARY KEY (tenant_id, kind, entry),
  CONSTRAINT ng_words_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- When each tenant last changed its NG list. NG-list changes lock the
-- tenant's row here, so that they run one at a time (the size limit holds)
-- without locking the tenant's row in tenants, which every token issue and
-- channel creation of the tenant reads (foreign key checks).
CREATE TABLE ng_lists (
  tenant_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  updated_at DATETIME(3) NOT NULL,
  PRIMARY KEY (tenant_id),
  CONSTRAINT ng_lists_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Bans and mutes, one of each kind per user at most. expires_at NULL means
-- until lifted; rows whose expires_at has passed are no longer in force and
-- are purged.
CREATE TABLE sanctions (
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind       ENUM('ban', 'mute') CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at DATETIME(3)  NULL,
  reason     VARCHAR(200) NOT NULL DEFAULT '',
  created_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (tenant_id, user_id, kind),
  KEY sanctions_expires (expires_at),
  CONSTRAINT sanctions_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- AddMember checks a channel's size against the tenant's limit without
-- counting its members: the count is kept on the channel row, which also
-- serialises membership changes of one channel.
ALTER TABLE channels ADD COLUMN member_count BIGINT UNSIGNED NOT NULL DEFAULT 0;
UPDATE channels c SET member_count =
  (SELECT COUNT(*) FROM members m WHERE m.tenant_id = c.tenant_id AND m.channel = c.name);

-- A deleted message stays as a tombstone (deleted_at set, text and data
-- cleared) so that a copy the log writer appends later stays deleted. The
-- log is read in time order (ts, then seq); each index ends with ts and seq
-- (and, implicitly, pk) so that every page is one index range scan.
ALTER TABLE messages
  ADD COLUMN deleted_at DATETIME(3) NULL,
  DROP KEY messages_tenant_seq,
  DROP KEY messages_channel_seq,
  DROP KEY messages_user_seq,
  DROP KEY messages_ts,
  ADD KEY messages_ts (tenant_id, ts, seq),
  ADD KEY messages_channel_ts (tenant_id, channel, ts, seq),
  ADD KEY messages_user_ts (tenant_id, from_user, ts, seq);
