-- What players expect of chat: replies, attachments and edits of a
-- message in the log (with each edit kept for operators), reactions, read
-- cursors, blocks, and the search index of the log.

-- reply_to is the id of the message a message answers; quote and
-- attachments are JSON. edited_at and edited_seq are those of the latest
-- edit applied (edited_seq makes applying an edit twice harmless). The
-- (channel, seq) index counts a channel's messages after a read cursor.
ALTER TABLE messages
  ADD COLUMN reply_to    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
  ADD COLUMN quote       TEXT   NULL,
  ADD COLUMN attachments TEXT   NULL,
  ADD COLUMN edited_at   BIGINT NULL,
  ADD COLUMN edited_seq  BIGINT UNSIGNED NULL,
  ADD KEY messages_channel_seq (tenant_id, channel, seq);

-- Every edit of a message: the text before and after. edit_id is the
-- edit's own id in the stream, so that an edit written twice is kept once.
CREATE TABLE message_edits (
  pk         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  edit_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  id         VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  channel    VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  seq        BIGINT UNSIGNED NOT NULL,
  editor     VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  previous   MEDIUMTEXT   NOT NULL,
  text       MEDIUMTEXT   NOT NULL,
  edited_at  BIGINT       NOT NULL,
  PRIMARY KEY (pk),
  UNIQUE KEY message_edits_edit (tenant_id, edit_id),
  KEY message_edits_message (tenant_id, id, seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One reaction per user per emoji per message. emoji is compared as
-- bytes (VARBINARY: no padding, no collation folding).
CREATE TABLE message_reactions (
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  id         VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  emoji      VARBINARY(32) NOT NULL,
  user_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  channel    VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (tenant_id, id, emoji, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- How far each user has read each channel.
CREATE TABLE read_cursors (
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  channel    VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  seq        BIGINT UNSIGNED NOT NULL,
  updated_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (tenant_id, user_id, channel)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Who blocks whom.
CREATE TABLE user_blocks (
  tenant_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  other_id   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(3) NOT NULL,
  PRIMARY KEY (tenant_id, user_id, other_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The search index: each distinct pair of neighbouring characters
-- (bigram) of a message's normalised text (case, width and kana folded,
-- as NG words are matched), with the message's log row. A query's
-- bigrams intersect to candidates, newest first; the normalised text
-- then decides. channel is here so that a player's search filters
-- without reading the message.
CREATE TABLE message_grams (
  tenant_id VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  gram      VARBINARY(8) NOT NULL,
  msg_pk    BIGINT UNSIGNED NOT NULL,
  channel   VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (tenant_id, gram, msg_pk)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- How far the indexer has read the message log (its pk).
CREATE TABLE search_progress (
  id      TINYINT UNSIGNED NOT NULL,
  last_pk BIGINT UNSIGNED NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB;
INSERT INTO search_progress (id, last_pk) VALUES (1, 0);
