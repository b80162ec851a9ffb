-- Signed tokens: the keys that verify a tenant's signed user tokens, and
-- the revocations of signed tokens (by token id, and by user: tokens
-- issued before a time).

CREATE TABLE signing_keys (
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kid        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  alg        VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  secret     VARBINARY(512) NULL,
  public_key TEXT         NULL,
  created_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (tenant_id, kid),
  CONSTRAINT signing_keys_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A revoked token id is kept until every token that could carry it has
-- expired (expires_at), then purged.
CREATE TABLE revoked_token_ids (
  tenant_id  VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  jti        VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (tenant_id, jti),
  KEY revoked_token_ids_expires (expires_at),
  CONSTRAINT revoked_token_ids_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A user's signed tokens issued before revoked_at are refused.
CREATE TABLE user_revocations (
  tenant_id  VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  revoked_at DATETIME(3) NOT NULL,
  PRIMARY KEY (tenant_id, user_id),
  KEY user_revocations_at (revoked_at),
  CONSTRAINT user_revocations_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
