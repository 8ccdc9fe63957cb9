-- Finds the newest retained generation that names a path (a client that
-- read an older index asks for one of its files).
CREATE INDEX generation_files_path ON generation_files (repo_id, path, number);
