-- Edge agents report their position (the generation each followed
-- repository is at) to the origin; one row per edge, replaced on every
-- report. Not part of the change feed.
CREATE TABLE edges (
    name       TEXT    NOT NULL PRIMARY KEY,
    version    TEXT    NOT NULL,
    repos      TEXT    NOT NULL,
    last_sync  INTEGER NOT NULL DEFAULT 0,
    last_seen  INTEGER NOT NULL,
    address    TEXT    NOT NULL DEFAULT '',
    last_error TEXT    NOT NULL DEFAULT ''
);
