-- Edge agents report their position (the generation each followed
-- repository is at) to the origin; one row per edge, replaced on every
-- report. Not part of the change feed.
CREATE TABLE edges (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    version    TEXT COLLATE "C" NOT NULL,
    repos      TEXT COLLATE "C" NOT NULL,
    last_sync  BIGINT NOT NULL DEFAULT 0,
    last_seen  BIGINT NOT NULL,
    address    TEXT COLLATE "C" NOT NULL DEFAULT '',
    last_error TEXT NOT NULL DEFAULT ''
);
