-- Undo 000001_init: drop every table, dependents first.
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS messages;
DROP TABLE IF EXISTS members;
DROP TABLE IF EXISTS channels;
DROP TABLE IF EXISTS user_tokens;
DROP TABLE IF EXISTS api_keys;
DROP TABLE IF EXISTS tenants;
