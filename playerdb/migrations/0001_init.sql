-- arena's player records: players, ratings per profile (queue mode),
-- a histogram of ratings per profile for leaderboard places, and match
-- history. Portable between PostgreSQL and SQLite: times are unix
-- milliseconds, ids are text.

CREATE TABLE players (
    id            TEXT    NOT NULL PRIMARY KEY,
    display_name  TEXT    NOT NULL,
    photo         TEXT    NOT NULL DEFAULT '',
    bot           BOOLEAN NOT NULL DEFAULT FALSE,
    account       TEXT    UNIQUE,          -- login name (lower case); NULL for a guest
    password_hash TEXT,                    -- argon2id, PHC string format; NULL for a guest
    created_ms    BIGINT  NOT NULL,
    last_seen_ms  BIGINT  NOT NULL
);

CREATE TABLE ratings (
    player_id  TEXT    NOT NULL REFERENCES players (id),
    profile    TEXT    NOT NULL,
    rating     INTEGER NOT NULL,
    games      INTEGER NOT NULL DEFAULT 0,
    wins       INTEGER NOT NULL DEFAULT 0,
    losses     INTEGER NOT NULL DEFAULT 0,
    updated_ms BIGINT  NOT NULL,
    PRIMARY KEY (player_id, profile)
);
CREATE INDEX ratings_board ON ratings (profile, rating DESC, player_id);

-- rating_counts(profile, rating) = how many players of the profile have
-- that rating, kept in the same transactions as ratings, so a place is a
-- sum over at most a few thousand rows whatever the number of players.
CREATE TABLE rating_counts (
    profile TEXT    NOT NULL,
    rating  INTEGER NOT NULL,
    n       BIGINT  NOT NULL,
    PRIMARY KEY (profile, rating)
);

CREATE TABLE matches (
    room        TEXT   NOT NULL PRIMARY KEY,
    game        TEXT   NOT NULL,
    profile     TEXT   NOT NULL,
    host        TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    started_ms  BIGINT NOT NULL,
    ended_ms    BIGINT NOT NULL,
    recorded_ms BIGINT NOT NULL
);

CREATE TABLE match_players (
    room          TEXT             NOT NULL REFERENCES matches (room),
    player_id     TEXT             NOT NULL REFERENCES players (id),
    name          TEXT             NOT NULL, -- the display name when the match was played
    place         INTEGER          NOT NULL, -- 1 is best; equal places drew
    score         DOUBLE PRECISION NOT NULL,
    left_early    BOOLEAN          NOT NULL,
    rating_before INTEGER          NOT NULL,
    rating_after  INTEGER          NOT NULL,
    ended_ms      BIGINT           NOT NULL, -- the match's, for paging a player's history
    PRIMARY KEY (room, player_id)
);
CREATE INDEX match_players_history ON match_players (player_id, ended_ms DESC, room DESC);
