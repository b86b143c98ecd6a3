-- Change-feed retention: old `changes` rows may be deleted; `pruned_through`
-- is the highest sequence deleted so far. An instance whose position is below
-- it has missed changes and reloads its index from a fresh snapshot.
CREATE TABLE feed_meta (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through BIGINT NOT NULL DEFAULT 0
);
INSERT INTO feed_meta (id, pruned_through) VALUES (1, 0);
