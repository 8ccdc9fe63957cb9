-- A package file may be live under several identities when its bytes are
-- the same: an APT repository serves one pool/ file to every distribution
-- that holds the package. AddPackage refuses only a live package at the
-- same path with a different digest, in its transaction.
DROP INDEX packages_live_path;
CREATE INDEX packages_live_path ON packages (repo_id, path) WHERE removed_seq = 0;
