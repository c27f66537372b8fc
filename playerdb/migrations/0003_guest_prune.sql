-- Guests by when they were last seen, for PruneGuests: a guest record
-- with no games, unseen for longer than its last token could live, is
-- deleted (nothing refers to it and nobody can reach it).
CREATE INDEX players_guests_seen ON players (last_seen_ms) WHERE account IS NULL;
