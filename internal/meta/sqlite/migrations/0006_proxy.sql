-- Proxy repositories: what each proxy repository holds in its cache, path
-- by path, with the upstream's validators for conditional revalidation.
-- fragments is the blob of a cached package's rendered index entries
-- (union proxies), "" for none. Times are UTC unix nanoseconds (0 for
-- "never").
CREATE TABLE proxy_files (
    repo_id       INTEGER NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    path          TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    content_type  TEXT    NOT NULL,
    etag          TEXT    NOT NULL,
    last_modified TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    fetched_at    INTEGER NOT NULL,
    used_at       INTEGER NOT NULL,
    fragments     TEXT    NOT NULL,
    PRIMARY KEY (repo_id, path)
);
CREATE INDEX proxy_files_digest ON proxy_files (digest);
