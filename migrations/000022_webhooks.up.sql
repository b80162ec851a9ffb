-- Webhooks: the endpoints tenants register, and the record of each
-- delivery attempt (kept a week, for GET /webhooks/{id}/deliveries).

CREATE TABLE webhooks (
  tenant_id  VARCHAR(64)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  id         VARCHAR(40)   CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  url        VARCHAR(2000) NOT NULL,
  secret     VARCHAR(256)  NOT NULL,
  events     TEXT          NOT NULL,
  created_at DATETIME(3)   NOT NULL,
  PRIMARY KEY (tenant_id, id),
  CONSTRAINT webhooks_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE webhook_deliveries (
  pk          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  tenant_id   VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  webhook_id  VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  delivery_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  type        VARCHAR(32)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  attempt     INT UNSIGNED NOT NULL,
  status      SMALLINT UNSIGNED NOT NULL DEFAULT 0,
  error       VARCHAR(300) NOT NULL DEFAULT '',
  latency_ms  INT UNSIGNED NOT NULL DEFAULT 0,
  final       BOOLEAN      NOT NULL DEFAULT FALSE,
  at          DATETIME(3)  NOT NULL,
  PRIMARY KEY (pk),
  KEY webhook_deliveries_hook (tenant_id, webhook_id, pk),
  KEY webhook_deliveries_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
