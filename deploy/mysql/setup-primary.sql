-- Run once on a new primary (mariadb < setup-primary.sql): the database,
-- the account the API processes and log writers use, and the account the
-- replica replicates with. Change both passwords (kaiwa's goes into
-- /etc/kaiwa/api.env). Replicated to the replica like everything after it.
CREATE DATABASE IF NOT EXISTS kaiwa CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS 'kaiwa'@'%' IDENTIFIED BY 'CHANGE_ME';
GRANT ALL PRIVILEGES ON kaiwa.* TO 'kaiwa'@'%';
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'CHANGE_ME_TOO';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
