-- Mirror repositories: one row per sync from the upstreams, inserted when
-- it starts and replaced when it ends. stats is a JSON document the store
-- does not interpret. Times are UTC unix nanoseconds (0 for "never").
CREATE TABLE mirror_syncs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id     INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    error       TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    generation  INTEGER NOT NULL,
    stats       BLOB    NOT NULL
);
CREATE INDEX mirror_syncs_repo ON mirror_syncs (repo_id, id);
CREATE INDEX mirror_syncs_status ON mirror_syncs (repo_id, status, id);

-- Snapshots: a name for one generation of a repository. The generation
-- cannot be deleted while a snapshot names it (no ON DELETE action: the
-- delete fails), so PruneGenerations skips it; deleting the repository
-- removes both.
CREATE TABLE snapshots (
    repo_id    INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, generation) REFERENCES generations (repo_id, number)
);
CREATE INDEX snapshots_generation ON snapshots (repo_id, generation);
