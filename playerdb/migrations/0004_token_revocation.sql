-- Token revocation: a player token whose issue time (its iat, unix
-- seconds) is before tokens_valid_from_s is refused. 0 (every player
-- until it changes its password or signs out its other devices): every
-- token is accepted. See RevokeTokens for how the second is chosen.
ALTER TABLE players ADD COLUMN tokens_valid_from_s BIGINT NOT NULL DEFAULT 0;
