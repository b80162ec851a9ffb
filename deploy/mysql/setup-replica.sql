-- Run once on a new, empty replica (mariadb < setup-replica.sql), after
-- setup-primary.sql: it replicates the primary from its first GTID. For a
-- replica of a primary that already has data, restore a backup first
-- (mariadb-backup, see docs/deploy.md) and set gtid_slave_pos to the
-- backup's position before this.
CHANGE MASTER TO
  MASTER_HOST = 'mysql-primary',
  MASTER_PORT = 3306,
  MASTER_USER = 'repl',
  MASTER_PASSWORD = 'CHANGE_ME_TOO',
  MASTER_USE_GTID = slave_pos,
  MASTER_CONNECT_RETRY = 2;
START SLAVE;
