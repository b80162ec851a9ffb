DROP TABLE user_revocations;
DROP TABLE revoked_token_ids;
DROP TABLE signing_keys;
