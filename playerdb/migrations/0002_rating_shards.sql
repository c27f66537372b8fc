-- The rating histogram split into shards: a writer adds to the row of
-- one shard (picked at random per transaction), so concurrent writers
-- whose players share a rating (every new player starts at 1500) rarely
-- wait on one row. A place still sums at most a few rows per distinct
-- rating: 1 + SUM(n) of the profile's rows rated higher.
CREATE TABLE rating_shards (
    profile TEXT    NOT NULL,
    rating  INTEGER NOT NULL,
    shard   INTEGER NOT NULL,
    n       BIGINT  NOT NULL,
    PRIMARY KEY (profile, rating, shard)
);
INSERT INTO rating_shards (profile, rating, shard, n) SELECT profile, rating, 0, n FROM rating_counts;
DROP TABLE rating_counts;
