-- Initial schema. Times are UTC unix nanoseconds (0 for "never"); ids and
-- sequence numbers are never reused (AUTOINCREMENT), as with a PostgreSQL
-- identity column. A package is live while removed_seq = 0.

CREATE TABLE repos (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL UNIQUE,
    format             TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    config             BLOB    NOT NULL,
    current_generation INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE packages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id     INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    scope       TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    epoch       TEXT    NOT NULL,
    version     TEXT    NOT NULL,
    release     TEXT    NOT NULL,
    arch        TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    summary     TEXT    NOT NULL,
    uploaded_by TEXT    NOT NULL,
    uploaded_at INTEGER NOT NULL,
    added_seq   INTEGER NOT NULL,
    removed_seq INTEGER NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX packages_live_identity
    ON packages (repo_id, scope, name, epoch, version, release, arch)
    WHERE removed_seq = 0;
CREATE UNIQUE INDEX packages_live_path ON packages (repo_id, path) WHERE removed_seq = 0;
CREATE INDEX packages_repo ON packages (repo_id, id);
CREATE INDEX packages_path ON packages (repo_id, path);
CREATE INDEX packages_added ON packages (repo_id, added_seq);
CREATE INDEX packages_removed ON packages (repo_id, removed_seq) WHERE removed_seq > 0;
CREATE INDEX packages_digest ON packages (digest);

CREATE TABLE package_fragments (
    package_id INTEGER NOT NULL REFERENCES packages (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    data       BLOB    NOT NULL,
    PRIMARY KEY (package_id, kind)
);

CREATE TABLE generations (
    repo_id    INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    number     INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, number)
);

CREATE TABLE generation_files (
    repo_id      INTEGER NOT NULL,
    number       INTEGER NOT NULL,
    path         TEXT    NOT NULL,
    digest       TEXT    NOT NULL,
    size         INTEGER NOT NULL,
    content_type TEXT    NOT NULL,
    PRIMARY KEY (repo_id, number, path),
    FOREIGN KEY (repo_id, number) REFERENCES generations (repo_id, number) ON DELETE CASCADE
);

CREATE INDEX generation_files_digest ON generation_files (digest);

CREATE TABLE events (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT    NOT NULL,
    repo TEXT    NOT NULL,
    data BLOB    NOT NULL,
    time INTEGER NOT NULL
);

CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    hash       TEXT    NOT NULL UNIQUE,
    scope      TEXT    NOT NULL,
    repos      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL DEFAULT 0
);
