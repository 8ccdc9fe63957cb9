-- An index file stored as the concatenation of several blobs (one per
-- compressed chunk): parts holds their hex digests, concatenated in order;
-- empty when the file is the single blob named by digest.
ALTER TABLE generation_files ADD COLUMN parts TEXT COLLATE "C" NOT NULL DEFAULT '';
