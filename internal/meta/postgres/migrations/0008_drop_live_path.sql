-- packages_path (repo_id, path) answers every lookup by path, live or not
-- (a path has few rows); the partial index on live paths only cost each
-- insert another write at a random place.
DROP INDEX packages_live_path;
