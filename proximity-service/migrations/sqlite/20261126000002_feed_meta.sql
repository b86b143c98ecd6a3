-- Change-feed retention (see the Postgres migration of the same name).
CREATE TABLE feed_meta (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    pruned_through INTEGER NOT NULL DEFAULT 0
);
INSERT INTO feed_meta (id, pruned_through) VALUES (1, 0);
