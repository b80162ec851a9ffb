-- Kaiwa's first schema: tenants, their API keys and user tokens, channels
-- and membership, and the message and event logs. Every table is scoped by
-- tenant_id; names use binary collations because they are case-sensitive.
-- Times of records are DATETIME(3) in UTC; message and event times are
-- milliseconds since the epoch, as on the wire.

CREATE TABLE tenants (
  id         VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name       VARCHAR(200) NOT NULL,
  disabled   BOOLEAN      NOT NULL DEFAULT FALSE,
  settings   TEXT         NOT NULL,
  created_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE api_keys (
  id           BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  key_hash     CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at   DATETIME(3) NOT NULL,
  last_used_at DATETIME(3) NULL,
  revoked_at   DATETIME(3) NULL,
  PRIMARY KEY (id),
  UNIQUE KEY api_keys_hash (key_hash),
  KEY api_keys_tenant (tenant_id),
  CONSTRAINT api_keys_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_tokens (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name             VARCHAR(64) NOT NULL,
  token_hash       CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  join_prefixes    TEXT        NOT NULL,
  publish_prefixes TEXT        NOT NULL,
  expires_at       DATETIME(3) NOT NULL,
  revoked_at       DATETIME(3) NULL,
  created_at       DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY user_tokens_hash (token_hash),
  KEY user_tokens_user (tenant_id, user_id),
  KEY user_tokens_expires (expires_at),
  CONSTRAINT user_tokens_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE channels (
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name       VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind       ENUM('open', 'closed') CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'open',
  title      VARCHAR(200) NOT NULL DEFAULT '',
  created_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (tenant_id, name),
  CONSTRAINT channels_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE members (
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  channel    VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id    VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (tenant_id, channel, user_id),
  KEY members_user (tenant_id, user_id),
  CONSTRAINT members_channel_fk FOREIGN KEY (tenant_id, channel) REFERENCES channels (tenant_id, name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The message log. pk orders rows that share a seq (it breaks ties in
-- keyset pagination); (tenant_id, id) is unique so the log writer can retry
-- a batch. from_user is '' for system messages. data is the message's JSON
-- object exactly as received, or NULL.
CREATE TABLE messages (
  pk        BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  id        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  seq       BIGINT UNSIGNED NOT NULL,
  channel   VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  from_user VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  from_name VARCHAR(64)  NOT NULL DEFAULT '',
  text      MEDIUMTEXT   NOT NULL,
  data      MEDIUMTEXT   NULL,
  ts        BIGINT       NOT NULL,
  is_system BOOLEAN      NOT NULL DEFAULT FALSE,
  PRIMARY KEY (pk),
  UNIQUE KEY messages_id (tenant_id, id),
  KEY messages_tenant_seq (tenant_id, seq),
  KEY messages_channel_seq (tenant_id, channel, seq),
  KEY messages_user_seq (tenant_id, from_user, seq),
  KEY messages_ts (tenant_id, ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The event log, read newest first by (ts, pk). user_id and channel are ''
-- when the event has none; detail is a JSON value or NULL.
CREATE TABLE events (
  pk        BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  id        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  type      VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id   VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  channel   VARCHAR(140) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  detail    MEDIUMTEXT   NULL,
  ts        BIGINT       NOT NULL,
  PRIMARY KEY (pk),
  UNIQUE KEY events_id (tenant_id, id),
  KEY events_ts (tenant_id, ts),
  KEY events_type_ts (tenant_id, type, ts),
  KEY events_user_ts (tenant_id, user_id, ts),
  KEY events_channel_ts (tenant_id, channel, ts)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
