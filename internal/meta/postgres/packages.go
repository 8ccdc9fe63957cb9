package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

// pkgColumns are the columns scanPackage reads, qualified by the alias p.
const pkgColumns = `p.id, p.repo_id, p.scope, p.name, p.epoch, p.version, p.release, p.arch,
	p.path, p.digest, p.size, p.summary, p.uploaded_by, p.uploaded_at, p.added_seq, p.removed_seq`

// identityWhere matches the live package of an identity; $1 is the
// repository, $2…$7 the identity.
const identityWhere = `p.repo_id = $1 AND p.removed_seq = 0 AND p.scope = $2 AND p.name = $3
	AND p.epoch = $4 AND p.version = $5 AND p.release = $6 AND p.arch = $7`

// identityArgs are the arguments of identityWhere.
func identityArgs(repoID int64, id meta.Identity) []any {
	return []any{repoID, id.Scope, id.Name, id.Epoch, id.Version, id.Release, id.Arch}
}

// batchTimeout bounds one AddPackage transaction. It runs for several
// callers, so it does not end with its leader's context.
const batchTimeout = 2 * time.Minute

// AddPackage inserts p with its fragments and appends a package.added event.
func (s *Store) AddPackage(ctx context.Context, p *meta.Package) (*meta.Package, error) {
	r := s.adds.add(ctx, p, s.addBatch)
	if errors.Is(r.err, meta.ErrExists) {
		return r.existing, fmt.Errorf("add package %s to repository %d: %s is there: %w",
			p.Path, p.RepoID, r.existing.Path, r.err)
	}
	if r.err != nil {
		return nil, fmt.Errorf("add package %s to repository %d: %w", p.Path, p.RepoID, dbErr(r.err))
	}
	p.ID, p.AddedSeq, p.RemovedSeq = r.id, r.seq, 0
	return p, nil
}

// addBatch inserts a batch of packages in one transaction, each inside a
// savepoint so that one failing package leaves the others in.
func (s *Store) addBatch(batch []*addRequest) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), batchTimeout)
	defer cancel()
	err := s.write(ctx, appending, func(tx pgx.Tx) error {
		// IDs for the whole batch at once, drawn under the write lock so
		// that they grow in commit order. A package that is not inserted
		// leaves a gap.
		rows, err := tx.Query(ctx, `SELECT nextval('packages_id_seq') FROM generate_series(1, $1)`, len(batch))
		if err != nil {
			return fmt.Errorf("allocate package IDs: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("allocate package IDs: %w", err)
		}
		for i, r := range batch {
			r.existing, r.id, r.seq, r.err = nil, 0, 0, r.ctx.Err()
			if r.err != nil {
				continue
			}
			if err := addOne(ctx, tx, r, ids[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Nothing of the batch committed: not even an ErrExists answer
		// holds, since the package it names may be one of this batch's.
		for _, r := range batch {
			r.existing, r.id, r.seq, r.err = nil, 0, 0, err
		}
	}
}

// addOne inserts the package of r under the ID id, with its fragments and
// its event, in tx, which holds the write lock, and sets the results of r.
// It returns an error only when the transaction cannot go on.
//
// One round trip: the statements go out together, each of the later ones
// doing nothing unless the package went in. The package's added_seq is
// drawn from the events' sequence as it goes in, and its event takes that
// number. Nobody else adds or removes packages while tx holds the write
// lock, so the checks hold until commit.
func addOne(ctx context.Context, tx pgx.Tx, r *addRequest, id int64) error {
	p := r.p
	kinds := make([]string, 0, len(p.Fragments))
	data := make([][]byte, 0, len(p.Fragments))
	for k, d := range p.Fragments {
		kinds, data = append(kinds, k), append(data, blob(d))
	}
	var (
		seq      int64
		inserted bool
	)
	b := &pgx.Batch{}
	b.Queue(`SAVEPOINT add_package`)
	// A live package at the same path with other bytes conflicts; with
	// the same bytes the file is shared (the same .deb in two
	// distributions). The partial unique index on live identities turns
	// a duplicate identity into no row.
	b.Queue(`INSERT INTO packages (id, repo_id, scope, name, epoch, version, release, arch,
			path, digest, size, summary, uploaded_by, uploaded_at, added_seq, removed_seq)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, nextval('events_seq_seq'), 0
		WHERE EXISTS (SELECT 1 FROM repos WHERE id = $2)
			AND NOT EXISTS (SELECT 1 FROM packages p
				WHERE p.repo_id = $2 AND p.removed_seq = 0 AND p.path = $9 AND p.digest <> $10)
		ON CONFLICT DO NOTHING RETURNING added_seq`,
		id, p.RepoID, p.Scope, p.Name, p.Epoch, p.Version, p.Release, p.Arch,
		p.Path, p.Digest, p.Size, p.Summary, p.UploadedBy, nanos(p.UploadedAt)).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&seq)
		inserted = err == nil
		return ignoreNoRows(err)
	})
	b.Queue(`INSERT INTO package_fragments (package_id, kind, data)
		SELECT p.id, f.kind, f.data FROM packages p, unnest($2::text[], $3::bytea[]) AS f (kind, data)
		WHERE p.id = $1`, id, kinds, data)
	b.Queue(`INSERT INTO events (seq, type, repo, data, time)
		SELECT p.added_seq, $2, r.name, $3, $4 FROM packages p JOIN repos r ON r.id = p.repo_id WHERE p.id = $1`,
		id, meta.EventPackageAdded, packageEvent(id, p), nanos(now()))
	b.Queue(`RELEASE SAVEPOINT add_package`)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return undoPackage(ctx, tx, r, err)
	}
	if inserted {
		r.id, r.seq = id, seq
		return nil
	}
	// Why not: the package in the way, or no repository.
	existing, err := conflicting(ctx, tx, p)
	switch {
	case err == nil:
		r.existing, r.err = existing, meta.ErrExists
	case !errNoRows(err):
		return err
	default:
		if _, err := repoName(ctx, tx, p.RepoID); err != nil {
			if errors.Is(err, meta.ErrNotFound) {
				r.err = err
				return nil
			}
			return err
		}
		r.err = errors.New("package not inserted, and nothing found in its way")
	}
	return nil
}

// conflicting returns the live package that keeps p out: the one at its
// path with other bytes, else the one with its identity.
func conflicting(ctx context.Context, tx pgx.Tx, p *meta.Package) (*meta.Package, error) {
	ex, err := scanPackage(tx.QueryRow(ctx, `SELECT `+pkgColumns+` FROM packages p
		WHERE p.repo_id = $1 AND p.removed_seq = 0 AND p.path = $2 AND p.digest <> $3 LIMIT 1`,
		p.RepoID, p.Path, p.Digest))
	if errNoRows(err) {
		ex, err = scanPackage(tx.QueryRow(ctx, `SELECT `+pkgColumns+` FROM packages p WHERE `+identityWhere,
			identityArgs(p.RepoID, p.Identity)...))
	}
	return ex, err
}

// undoPackage rolls tx back to before the package of r after err, which
// becomes the result of r. It returns an error when the transaction cannot
// go on: it lost its connection, or the rollback failed.
func undoPackage(ctx context.Context, tx pgx.Tx, r *addRequest, err error) error {
	if unavailable(err) {
		return err
	}
	if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT add_package; RELEASE SAVEPOINT add_package`); rerr != nil {
		return fmt.Errorf("%w (rolling back after: %w)", rerr, err)
	}
	r.existing, r.id, r.seq, r.err = nil, 0, 0, err
	return nil
}

// ignoreNoRows returns err, or nil if it says a query returned no row.
func ignoreNoRows(err error) error {
	if errNoRows(err) {
		return nil
	}
	return err
}

// FindPackage returns the live package with that identity.
func (s *Store) FindPackage(ctx context.Context, repoID int64, id meta.Identity) (*meta.Package, error) {
	var p *meta.Package
	err := s.read(ctx, func() (err error) {
		p, err = scanPackage(s.pool.QueryRow(ctx, `SELECT `+pkgColumns+` FROM packages p WHERE `+identityWhere,
			identityArgs(repoID, id)...))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find package %s %s:%s-%s.%s in repository %d: %w",
			id.Name, id.Epoch, id.Version, id.Release, id.Arch, repoID, dbErr(err))
	}
	return p, nil
}

// GetPackage returns a live package by ID, without fragments.
func (s *Store) GetPackage(ctx context.Context, repoID, id int64) (*meta.Package, error) {
	var p *meta.Package
	err := s.read(ctx, func() (err error) {
		p, err = scanPackage(s.pool.QueryRow(ctx, `SELECT `+pkgColumns+` FROM packages p
			WHERE p.id = $1 AND p.repo_id = $2 AND p.removed_seq = 0`, id, repoID))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get package %d of repository %d: %w", id, repoID, dbErr(err))
	}
	return p, nil
}

// PackageByPath returns the package served at path in a generation whose
// Seq is in [from, to], without fragments.
func (s *Store) PackageByPath(ctx context.Context, repoID int64, path string, from, to int64) (*meta.Package, error) {
	var p *meta.Package
	err := s.read(ctx, func() (err error) {
		p, err = scanPackage(s.pool.QueryRow(ctx, `SELECT `+pkgColumns+` FROM packages p
			WHERE p.repo_id = $1 AND p.path = $2 AND p.added_seq <= $4 AND (p.removed_seq = 0 OR p.removed_seq > $3)
			ORDER BY p.id DESC LIMIT 1`, repoID, path, from, to))
		return err
	})
	if errNoRows(err) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("package at %s in repository %d between %d and %d: %w", path, repoID, from, to, dbErr(err))
	}
	return p, nil
}

// likeEscaper escapes the LIKE wildcards of a search text, with \ as the
// escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListPackages returns live packages by ascending ID, without fragments.
func (s *Store) ListPackages(ctx context.Context, repoID int64, q meta.PackageQuery) ([]meta.Package, error) {
	var limit any // NULL: no limit
	if q.Limit > 0 {
		limit = q.Limit
	}
	query := `SELECT ` + pkgColumns + ` FROM packages p WHERE p.repo_id = $1 AND p.removed_seq = 0 AND p.id > $2`
	args := []any{repoID, q.AfterID, limit}
	if q.Text != "" {
		// lower() of the "C" collation folds ASCII only, as SQLite's does.
		query += ` AND lower(p.name) LIKE lower($4) ESCAPE '\'`
		args = append(args, "%"+likeEscaper.Replace(q.Text)+"%")
	}
	query += ` ORDER BY p.id LIMIT $3`
	var out []meta.Package
	err := s.read(ctx, func() error {
		out = nil
		rows, err := s.pool.Query(ctx, query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanPackage(rows)
			if err != nil {
				return err
			}
			out = append(out, *p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list packages of repository %d: %w", repoID, dbErr(err))
	}
	return out, nil
}

// RemovePackage marks a live package removed and appends a package.removed
// event.
func (s *Store) RemovePackage(ctx context.Context, repoID, id int64) (int64, error) {
	var seq int64
	err := s.write(ctx, appending, func(tx pgx.Tx) error {
		repo, err := repoName(ctx, tx, repoID)
		if err != nil {
			return err
		}
		p, err := scanPackage(tx.QueryRow(ctx, `SELECT `+pkgColumns+` FROM packages p
			WHERE p.id = $1 AND p.repo_id = $2 AND p.removed_seq = 0`, id, repoID))
		if errNoRows(err) {
			return meta.ErrNotFound
		}
		if err != nil {
			return err
		}
		seq, err = appendEvent(ctx, tx, meta.EventPackageRemoved, repo, packageEvent(id, p), now())
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE packages SET removed_seq = $1 WHERE id = $2`, seq, id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove package %d from repository %d: %w", id, repoID, dbErr(err))
	}
	return seq, nil
}

// addedIn matches the packages of repository $1 added in ($2, $3] and not
// removed in that range.
const addedIn = `p.repo_id = $1 AND p.added_seq > $2 AND p.added_seq <= $3
	AND NOT (p.removed_seq > $2 AND p.removed_seq <= $3)`

// PackageChanges returns the packages of the repository added or removed in
// (seq, upTo], in sequence order, with fragments for added ones.
//
// One statement, hence one snapshot: the changes, each added package's row
// repeated once per fragment.
func (s *Store) PackageChanges(ctx context.Context, repoID, seq, upTo int64) ([]meta.PackageChange, error) {
	var out []meta.PackageChange
	err := s.read(ctx, func() error {
		out = nil
		// "removed_seq > 0" repeats the condition of the partial index
		// packages_removed, which lets the planner use it.
		rows, err := s.pool.Query(ctx, `SELECT `+pkgColumns+`, c.removed, f.kind, f.data FROM (
				SELECT p.id, p.added_seq AS at, false AS removed FROM packages p WHERE `+addedIn+`
				UNION ALL
				SELECT p.id, p.removed_seq, true FROM packages p
				WHERE p.repo_id = $1 AND p.removed_seq > 0 AND p.removed_seq > $2 AND p.removed_seq <= $3
			) c JOIN packages p ON p.id = c.id
			LEFT JOIN package_fragments f ON f.package_id = c.id AND NOT c.removed
			ORDER BY c.at`, repoID, seq, upTo)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c    meta.PackageChange
				kind *string
				data []byte
			)
			p, err := scanPackage(rows, &c.Removed, &kind, &data)
			if err != nil {
				return err
			}
			if n := len(out); n == 0 || out[n-1].Package.ID != p.ID {
				c.Package = *p
				out = append(out, c)
			}
			if kind != nil {
				setFragment(&out[len(out)-1].Package, *kind, data)
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("package changes of repository %d in (%d, %d]: %w", repoID, seq, upTo, dbErr(err))
	}
	return out, nil
}

// liveAt matches the packages of repository $1 that were live at sequence
// $2.
const liveAt = `p.repo_id = $1 AND p.added_seq <= $2 AND (p.removed_seq = 0 OR p.removed_seq > $2)`

// livePage is the number of packages LivePackages reads per query.
const livePage = 500

// LivePackages calls fn for every package of the repository live at upTo,
// with fragments, in ascending ID order.
//
// It reads livePage packages at a time, each page with one statement, and
// holds no connection while fn runs, so fn may call the store. Pages need
// no common snapshot: once every event up to upTo is visible, which
// packages were live at upTo no longer changes (a removal after upTo leaves
// them live at upTo), and packages added later get higher IDs, so they
// could only extend the last page, consistently. Only DeleteRepo can cut
// the walk short.
func (s *Store) LivePackages(ctx context.Context, repoID, upTo int64, fn func(*meta.Package) error) error {
	for after := int64(0); ; {
		var page []*meta.Package
		err := s.read(ctx, func() (err error) {
			page, err = s.livePage(ctx, repoID, upTo, after)
			return err
		})
		if err != nil {
			return fmt.Errorf("live packages of repository %d at %d: %w", repoID, upTo, dbErr(err))
		}
		for _, p := range page {
			if err := fn(p); err != nil {
				return err
			}
		}
		if len(page) < livePage {
			return nil
		}
		after = page[len(page)-1].ID
	}
}

// livePage returns, with fragments, up to livePage packages live at upTo
// whose ID is above after.
func (s *Store) livePage(ctx context.Context, repoID, upTo, after int64) ([]*meta.Package, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+pkgColumns+`, f.kind, f.data FROM (
			SELECT * FROM packages p WHERE `+liveAt+` AND p.id > $3 ORDER BY p.id LIMIT $4
		) p LEFT JOIN package_fragments f ON f.package_id = p.id
		ORDER BY p.id`, repoID, upTo, after, livePage)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var page []*meta.Package
	for rows.Next() {
		var (
			kind *string
			data []byte
		)
		p, err := scanPackage(rows, &kind, &data)
		if err != nil {
			return nil, err
		}
		if n := len(page); n == 0 || page[n-1].ID != p.ID {
			page = append(page, p)
		}
		if kind != nil {
			setFragment(page[len(page)-1], *kind, data)
		}
	}
	return page, rows.Err()
}

// setFragment adds a fragment read from the database to p.
func setFragment(p *meta.Package, kind string, data []byte) {
	if p.Fragments == nil {
		p.Fragments = make(map[string][]byte, 4)
	}
	p.Fragments[kind] = blob(data)
}

// DigestReferenced reports whether a package or a retained generation names
// the digest.
func (s *Store) DigestReferenced(ctx context.Context, digest string) (bool, error) {
	var ref bool
	err := s.read(ctx, func() error {
		return s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM packages WHERE digest = $1)
			OR EXISTS (SELECT 1 FROM generation_files WHERE digest = $1)
			OR EXISTS (SELECT 1 FROM generation_files WHERE strpos(parts, $1) > 0)
			OR EXISTS (SELECT 1 FROM proxy_files WHERE digest = $1 OR fragments = $1)`, digest).Scan(&ref)
	})
	if err != nil {
		return false, fmt.Errorf("is blob %s referenced: %w", digest, dbErr(err))
	}
	return ref, nil
}

// WalkReferences lists the digests of every package and of every file and
// part of every retained generation.
func (s *Store) WalkReferences(ctx context.Context, fn func(digest string) error) error {
	for _, q := range []string{`SELECT digest, '' FROM packages`, `SELECT digest, parts FROM generation_files`, `SELECT digest, '' FROM proxy_files`, `SELECT fragments, '' FROM proxy_files WHERE fragments <> ''`} {
		// A retry after a lost connection lists some digests twice,
		// which fn must take anyway.
		err := s.read(ctx, func() error {
			rows, err := s.pool.Query(ctx, q)
			if err != nil {
				return err
			}
			defer rows.Close()
			var d, parts string
			for rows.Next() {
				if err := rows.Scan(&d, &parts); err != nil {
					return err
				}
				if err := fn(d); err != nil {
					return &fnError{err}
				}
				for _, p := range splitParts(parts) {
					if err := fn(p); err != nil {
						return &fnError{err}
					}
				}
			}
			return rows.Err()
		})
		var fe *fnError
		if errors.As(err, &fe) {
			return fe.err
		}
		if err != nil {
			return fmt.Errorf("list referenced blobs: %w", dbErr(err))
		}
	}
	return nil
}

// fnError carries the error of a caller's function out of a read, so that
// it is neither retried nor taken for the database's.
type fnError struct{ err error }

func (e *fnError) Error() string { return e.err.Error() }

func packageEvent(id int64, p *meta.Package) []byte {
	b, _ := json.Marshal(meta.PackageEventData{ID: id, Name: p.Name, Path: p.Path, Digest: p.Digest, Size: p.Size})
	return b
}

// scanPackage reads the columns pkgColumns, then into extra.
func scanPackage(sc scanner, extra ...any) (*meta.Package, error) {
	var (
		p          meta.Package
		uploadedAt int64
	)
	dest := append([]any{&p.ID, &p.RepoID, &p.Scope, &p.Name, &p.Epoch, &p.Version, &p.Release, &p.Arch,
		&p.Path, &p.Digest, &p.Size, &p.Summary, &p.UploadedBy, &uploadedAt, &p.AddedSeq, &p.RemovedSeq}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	p.UploadedAt = fromNanos(uploadedAt)
	return &p, nil
}

// Fragments returns the fragments of the given packages of a repository.
func (s *Store) Fragments(ctx context.Context, repoID int64, ids []int64) (map[int64]map[string][]byte, error) {
	out := make(map[int64]map[string][]byte, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := s.read(ctx, func() error {
		clear(out)
		rows, err := s.pool.Query(ctx, `SELECT f.package_id, f.kind, f.data FROM package_fragments f
			JOIN packages p ON p.id = f.package_id WHERE p.repo_id = $1 AND f.package_id = ANY ($2)`, repoID, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id   int64
				kind string
				data []byte
			)
			if err := rows.Scan(&id, &kind, &data); err != nil {
				return err
			}
			if out[id] == nil {
				out[id] = map[string][]byte{}
			}
			out[id][kind] = blob(data)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("read fragments of repository %d: %w", repoID, dbErr(err))
	}
	return out, nil
}
