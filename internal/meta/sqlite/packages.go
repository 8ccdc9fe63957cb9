package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/packyard/packyard/internal/meta"
)

// pkgColumns are the columns scanPackage reads, qualified by the alias p.
const pkgColumns = `p.id, p.repo_id, p.scope, p.name, p.epoch, p.version, p.release, p.arch,
	p.path, p.digest, p.size, p.summary, p.uploaded_by, p.uploaded_at, p.added_seq, p.removed_seq`

// identityWhere matches the live package of an identity; $1 is the
// repository, $2…$7 the identity.
const identityWhere = `p.repo_id = $1 AND p.removed_seq = 0 AND p.scope = $2 AND p.name = $3
	AND p.epoch = $4 AND p.version = $5 AND p.release = $6 AND p.arch = $7`

// AddPackage inserts p with its fragments and appends a package.added event.
func (s *Store) AddPackage(ctx context.Context, p *meta.Package) (*meta.Package, error) {
	r := s.adds.add(ctx, p, s.addBatch)
	if errors.Is(r.err, meta.ErrExists) {
		return r.existing, fmt.Errorf("add package %s to repository %d: %s is there: %w",
			p.Path, p.RepoID, r.existing.Path, r.err)
	}
	if r.err != nil {
		return nil, fmt.Errorf("add package %s to repository %d: %w", p.Path, p.RepoID, r.err)
	}
	p.ID, p.AddedSeq, p.RemovedSeq = r.id, r.seq, 0
	return p, nil
}

// addBatch inserts a batch of packages in one transaction (one fsync),
// each inside its own savepoint so that one failing package leaves the
// others in.
func (s *Store) addBatch(batch []*addRequest) {
	ctx := context.Background()
	err := s.write(ctx, func(tx *sql.Tx) error {
		savepoint, release, rollback := tx.StmtContext(ctx, s.stmtSavepoint), tx.StmtContext(ctx, s.stmtRelease), tx.StmtContext(ctx, s.stmtRollbackTo)
		names := map[int64]string{} // repository names, read once a batch
		for _, r := range batch {
			if r.err = r.ctx.Err(); r.err != nil {
				continue
			}
			if _, err := savepoint.ExecContext(ctx); err != nil {
				return err
			}
			r.existing, r.id, r.seq, r.err = s.addOne(ctx, tx, r.p, names)
			if r.err != nil && !errors.Is(r.err, meta.ErrExists) {
				if _, err := rollback.ExecContext(ctx); err != nil {
					return err
				}
			}
			if _, err := release.ExecContext(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Nothing of the batch committed: not even an ErrExists answer
		// holds, since the package it names may be one of this batch's.
		for _, r := range batch {
			r.existing, r.err = nil, err
		}
	}
}

const sqlPathConflict = `SELECT ` + pkgColumns + ` FROM packages p
	WHERE p.repo_id = $1 AND p.removed_seq = 0 AND p.path = $2 AND p.digest <> $3 LIMIT 1`

// addOne inserts one package with its fragments and its event in tx.
// names caches repository names for the transaction.
func (s *Store) addOne(ctx context.Context, tx *sql.Tx, p *meta.Package, names map[int64]string) (existing *meta.Package, id, seq int64, err error) {
	repo, ok := names[p.RepoID]
	if !ok {
		if repo, err = s.repoName(ctx, tx, p.RepoID); err != nil {
			return nil, 0, 0, err
		}
		names[p.RepoID] = repo
	}
	// A live package at the same path with other bytes conflicts; with
	// the same bytes the file is shared (the same .deb in two
	// distributions). The partial unique index on live identity turns a
	// duplicate into "no row inserted" too, which is how conflicts are
	// detected without parsing driver errors; which one it was is looked
	// up after.
	var predicted int64
	err = tx.StmtContext(ctx, s.stmtInsertPackage).QueryRowContext(ctx,
		p.RepoID, p.Scope, p.Name, p.Epoch, p.Version, p.Release, p.Arch,
		p.Path, p.Digest, p.Size, p.Summary, p.UploadedBy, nanos(p.UploadedAt)).Scan(&id, &predicted)
	if errors.Is(err, sql.ErrNoRows) {
		ex, err := scanPackage(tx.StmtContext(ctx, s.stmtPathConflict).QueryRowContext(ctx, p.RepoID, p.Path, p.Digest))
		if err == nil {
			return ex, 0, 0, meta.ErrExists
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, 0, 0, fmt.Errorf("look up package at %s: %w", p.Path, err)
		}
		existing, err = conflicting(ctx, tx, p)
		if err != nil {
			return nil, 0, 0, err
		}
		return existing, 0, 0, meta.ErrExists
	}
	if err != nil {
		return nil, 0, 0, err
	}
	ins := tx.StmtContext(ctx, s.stmtInsertFragment)
	for kind, data := range p.Fragments {
		if _, err := ins.ExecContext(ctx, id, kind, blob(data)); err != nil {
			return nil, 0, 0, fmt.Errorf("insert fragment %q: %w", kind, err)
		}
	}
	seq, err = s.appendEvent(ctx, tx, meta.EventPackageAdded, repo, packageEvent(id, p), now())
	if err != nil {
		return nil, 0, 0, err
	}
	if seq != predicted {
		// Not expected (nothing else writes in this transaction), but
		// the row must name its event's sequence number.
		_, err = tx.StmtContext(ctx, s.stmtSetAddedSeq).ExecContext(ctx, seq, id)
	}
	return nil, id, seq, err
}

// conflicting returns the live package that kept p from being inserted:
// the one with its identity.
func conflicting(ctx context.Context, tx *sql.Tx, p *meta.Package) (*meta.Package, error) {
	ex, err := scanPackage(tx.QueryRowContext(ctx, `SELECT `+pkgColumns+` FROM packages p WHERE `+identityWhere,
		p.RepoID, p.Scope, p.Name, p.Epoch, p.Version, p.Release, p.Arch))
	if err != nil {
		return nil, fmt.Errorf("look up conflicting package: %w", err)
	}
	return ex, nil
}

const (
	sqlFindPackage   = `SELECT ` + pkgColumns + ` FROM packages p WHERE ` + identityWhere
	sqlPackageByPath = `SELECT ` + pkgColumns + ` FROM packages p
		WHERE p.repo_id = $1 AND p.path = $2 AND +p.added_seq <= $4 AND (p.removed_seq = 0 OR p.removed_seq > $3)
		ORDER BY p.id DESC LIMIT 1`
)

// FindPackage returns the live package with that identity.
func (s *Store) FindPackage(ctx context.Context, repoID int64, id meta.Identity) (*meta.Package, error) {
	p, err := scanPackage(s.stmtFindPackage.QueryRowContext(ctx, repoID, id.Scope, id.Name, id.Epoch, id.Version, id.Release, id.Arch))
	if errors.Is(err, sql.ErrNoRows) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find package %s %s:%s-%s.%s in repository %d: %w",
			id.Name, id.Epoch, id.Version, id.Release, id.Arch, repoID, err)
	}
	return p, nil
}

// GetPackage returns a live package by ID, without fragments.
func (s *Store) GetPackage(ctx context.Context, repoID, id int64) (*meta.Package, error) {
	p, err := scanPackage(s.r.QueryRowContext(ctx, `SELECT `+pkgColumns+` FROM packages p
		WHERE p.id = $1 AND p.repo_id = $2 AND p.removed_seq = 0`, id, repoID))
	if errors.Is(err, sql.ErrNoRows) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get package %d of repository %d: %w", id, repoID, err)
	}
	return p, nil
}

// PackageByPath returns the package served at path in a generation that
// includes changes up to seq, without fragments.
func (s *Store) PackageByPath(ctx context.Context, repoID int64, path string, from, to int64) (*meta.Package, error) {
	p, err := scanPackage(s.stmtPackageByPath.QueryRowContext(ctx, repoID, path, from, to))
	if errors.Is(err, sql.ErrNoRows) {
		err = meta.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("package at %s in repository %d between %d and %d: %w", path, repoID, from, to, err)
	}
	return p, nil
}

// likeEscaper escapes the LIKE wildcards of a search text, with \ as the
// escape character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListPackages returns live packages by ascending ID, without fragments.
func (s *Store) ListPackages(ctx context.Context, repoID int64, q meta.PackageQuery) ([]meta.Package, error) {
	query := `SELECT ` + pkgColumns + ` FROM packages p WHERE p.repo_id = $1 AND p.removed_seq = 0 AND p.id > $2`
	args := []any{repoID, q.AfterID}
	if q.Text != "" {
		// lower() on both sides, so that the database's notion of case
		// applies to the text and the names alike.
		query += ` AND lower(p.name) LIKE lower($3) ESCAPE '\'`
		args = append(args, "%"+likeEscaper.Replace(q.Text)+"%")
	}
	query += ` ORDER BY p.id`
	if q.Limit > 0 {
		query += ` LIMIT ` + strconv.Itoa(q.Limit)
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list packages of repository %d: %w", repoID, err)
	}
	defer rows.Close()
	var out []meta.Package
	for rows.Next() {
		p, err := scanPackage(rows)
		if err != nil {
			return nil, fmt.Errorf("list packages of repository %d: %w", repoID, err)
		}
		out = append(out, *p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list packages of repository %d: %w", repoID, err)
	}
	return out, nil
}

// RemovePackage marks a live package removed and appends a package.removed
// event.
func (s *Store) RemovePackage(ctx context.Context, repoID, id int64) (int64, error) {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		repo, err := s.repoName(ctx, tx, repoID)
		if err != nil {
			return err
		}
		p, err := scanPackage(tx.QueryRowContext(ctx, `SELECT `+pkgColumns+` FROM packages p
			WHERE p.id = $1 AND p.repo_id = $2 AND p.removed_seq = 0`, id, repoID))
		if errors.Is(err, sql.ErrNoRows) {
			return meta.ErrNotFound
		}
		if err != nil {
			return err
		}
		seq, err = s.appendEvent(ctx, tx, meta.EventPackageRemoved, repo, packageEvent(id, p), now())
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE packages SET removed_seq = $1 WHERE id = $2`, seq, id)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove package %d from repository %d: %w", id, repoID, err)
	}
	return seq, nil
}

// liveAt matches the packages of repository $1 that were live at sequence
// $2. The unary + keeps SQLite from walking the added_seq index, which would
// cost a sort; ascending id order comes with packages_repo.
const liveAt = `p.repo_id = $1 AND +p.added_seq <= $2 AND (p.removed_seq = 0 OR p.removed_seq > $2)`

// PackageChanges returns the packages of the repository added or removed in
// (seq, upTo], in sequence order, with fragments for added ones.
//
// Two queries in one read transaction: the changes, sorted while their rows
// are small, then the fragments of the added packages.
func (s *Store) PackageChanges(ctx context.Context, repoID, seq, upTo int64) ([]meta.PackageChange, error) {
	out, err := s.packageChanges(ctx, repoID, seq, upTo)
	if err != nil {
		return nil, fmt.Errorf("package changes of repository %d in (%d, %d]: %w", repoID, seq, upTo, err)
	}
	return out, nil
}

// addedIn matches the packages of repository $1 added in ($2, $3] and not
// removed in that range.
const addedIn = `p.repo_id = $1 AND p.added_seq > $2 AND p.added_seq <= $3
	AND NOT (p.removed_seq > $2 AND p.removed_seq <= $3)`

func (s *Store) packageChanges(ctx context.Context, repoID, seq, upTo int64) ([]meta.PackageChange, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback() // read-only: nothing to keep
	// "removed_seq > 0" repeats the condition of the partial index
	// packages_removed, which lets SQLite use it.
	rows, err := tx.QueryContext(ctx, `SELECT `+pkgColumns+`, c.removed FROM (
			SELECT p.id, p.added_seq AS at, false AS removed FROM packages p WHERE `+addedIn+`
			UNION ALL
			SELECT p.id, p.removed_seq, true FROM packages p
			WHERE p.repo_id = $1 AND p.removed_seq > 0 AND p.removed_seq > $2 AND p.removed_seq <= $3
		) c JOIN packages p ON p.id = c.id
		ORDER BY c.at`, repoID, seq, upTo)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out   []meta.PackageChange
		added = map[int64]int{} // package ID → index in out
	)
	for rows.Next() {
		var c meta.PackageChange
		p, err := scanPackage(rows, &c.Removed)
		if err != nil {
			return nil, err
		}
		c.Package = *p
		if !c.Removed {
			added[p.ID] = len(out)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(added) == 0 {
		return out, nil
	}
	frags, err := tx.QueryContext(ctx, `SELECT f.package_id, f.kind, f.data
		FROM packages p JOIN package_fragments f ON f.package_id = p.id WHERE `+addedIn, repoID, seq, upTo)
	if err != nil {
		return nil, err
	}
	defer frags.Close()
	for frags.Next() {
		var (
			id   int64
			kind string
			data []byte
		)
		if err := frags.Scan(&id, &kind, &data); err != nil {
			return nil, err
		}
		if i, ok := added[id]; ok {
			setFragment(&out[i].Package, kind, data)
		}
	}
	return out, frags.Err()
}

// LivePackages calls fn for every package of the repository live at upTo,
// with fragments, in ascending ID order.
//
// It streams two queries of one read transaction (packages, and their
// fragments in the same order) and merges them, so memory does not grow
// with the repository. fn may call the store; the read snapshot stays open
// until LivePackages returns, which holds back WAL checkpoints meanwhile.
func (s *Store) LivePackages(ctx context.Context, repoID, upTo int64, fn func(*meta.Package) error) error {
	if err := s.livePackages(ctx, repoID, upTo, fn); err != nil {
		return fmt.Errorf("live packages of repository %d at %d: %w", repoID, upTo, err)
	}
	return nil
}

func (s *Store) livePackages(ctx context.Context, repoID, upTo int64, fn func(*meta.Package) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() // read-only: nothing to keep
	pkgs, err := tx.QueryContext(ctx, `SELECT `+pkgColumns+` FROM packages p WHERE `+liveAt+` ORDER BY p.id`,
		repoID, upTo)
	if err != nil {
		return err
	}
	defer pkgs.Close()
	frags, err := tx.QueryContext(ctx, `SELECT f.package_id, f.kind, f.data
		FROM packages p JOIN package_fragments f ON f.package_id = p.id
		WHERE `+liveAt+` ORDER BY p.id`, repoID, upTo)
	if err != nil {
		return err
	}
	defer frags.Close()

	var (
		fid   int64 // package of the fragment in hand, 0 if none
		fkind string
		fdata []byte
	)
	next := func() error {
		fid = 0
		if !frags.Next() {
			return frags.Err()
		}
		fdata = nil
		return frags.Scan(&fid, &fkind, &fdata)
	}
	if err := next(); err != nil {
		return err
	}
	for pkgs.Next() {
		p, err := scanPackage(pkgs)
		if err != nil {
			return err
		}
		for fid != 0 && fid <= p.ID {
			if fid == p.ID {
				setFragment(p, fkind, fdata)
			}
			if err := next(); err != nil {
				return err
			}
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return pkgs.Err()
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
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM packages WHERE digest = $1)
		OR EXISTS (SELECT 1 FROM generation_files WHERE digest = $1)
		OR EXISTS (SELECT 1 FROM generation_files WHERE parts LIKE '%' || $1 || '%')
		OR EXISTS (SELECT 1 FROM proxy_files WHERE digest = $1 OR fragments = $1)`, digest).Scan(&ref)
	if err != nil {
		return false, fmt.Errorf("is blob %s referenced: %w", digest, err)
	}
	return ref, nil
}

// WalkReferences lists the digests of every package and of every file and
// part of every retained generation.
func (s *Store) WalkReferences(ctx context.Context, fn func(digest string) error) error {
	for _, q := range []string{`SELECT digest, '' FROM packages`, `SELECT digest, parts FROM generation_files`, `SELECT digest, '' FROM proxy_files`, `SELECT fragments, '' FROM proxy_files WHERE fragments <> ''`} {
		if err := s.walkRefs(ctx, q, fn); err != nil {
			return fmt.Errorf("list referenced blobs: %w", err)
		}
	}
	return nil
}

func (s *Store) walkRefs(ctx context.Context, q string, fn func(string) error) error {
	rows, err := s.r.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var d, parts string
		if err := rows.Scan(&d, &parts); err != nil {
			return err
		}
		if err := fn(d); err != nil {
			return err
		}
		for _, p := range splitParts(parts) {
			if err := fn(p); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}

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

// fragmentsPerQuery bounds the IDs of one query (SQLite's parameter limit).
const fragmentsPerQuery = 500

// Fragments returns the fragments of the given packages of a repository.
func (s *Store) Fragments(ctx context.Context, repoID int64, ids []int64) (map[int64]map[string][]byte, error) {
	out := make(map[int64]map[string][]byte, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), fragmentsPerQuery)
		q := []byte(`SELECT f.package_id, f.kind, f.data FROM package_fragments f
			JOIN packages p ON p.id = f.package_id WHERE p.repo_id = $1 AND f.package_id IN (`)
		args := make([]any, 0, n+1)
		args = append(args, repoID)
		for i, id := range ids[:n] {
			if i > 0 {
				q = append(q, ',')
			}
			q = fmt.Appendf(q, "$%d", i+2)
			args = append(args, id)
		}
		q = append(q, ')')
		rows, err := s.r.QueryContext(ctx, string(q), args...)
		if err != nil {
			return nil, fmt.Errorf("read fragments of repository %d: %w", repoID, err)
		}
		for rows.Next() {
			var id int64
			var kind string
			var data []byte
			if err := rows.Scan(&id, &kind, &data); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read fragments of repository %d: %w", repoID, err)
			}
			if out[id] == nil {
				out[id] = map[string][]byte{}
			}
			out[id][kind] = data
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read fragments of repository %d: %w", repoID, err)
		}
		ids = ids[n:]
	}
	return out, nil
}
