-- Proxy repositories: what each proxy repository holds in its cache, path
-- by path, with the upstream's validators for conditional revalidation.
-- fragments is the blob of a cached package's rendered index entries
-- (union proxies), "" for none. Times are UTC unix nanoseconds (0 for
-- "never").
CREATE TABLE proxy_files (
    repo_id       BIGINT NOT NULL REFERENCES repos (id) ON DELETE CASCADE,
    path          TEXT COLLATE "C" NOT NULL,
    digest        TEXT COLLATE "C" NOT NULL,
    size          BIGINT NOT NULL,
    content_type  TEXT COLLATE "C" NOT NULL,
    etag          TEXT COLLATE "C" NOT NULL,
    last_modified TEXT COLLATE "C" NOT NULL,
    source        TEXT COLLATE "C" NOT NULL,
    fetched_at    BIGINT NOT NULL,
    used_at       BIGINT NOT NULL,
    fragments     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (repo_id, path)
);
CREATE INDEX proxy_files_digest ON proxy_files (digest);
