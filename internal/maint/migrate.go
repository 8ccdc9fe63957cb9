package maint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/meta"
)

// MigrateReport is the result of Migrate.
type MigrateReport struct {
	Rows        map[string]int `json:"rows"`
	Blobs       int            `json:"blobs"`
	BlobsCopied int            `json:"blobs_copied"`
	Bytes       int64          `json:"bytes_copied"`
}

// importBatch bounds the rows of one import transaction.
const importBatch = 1000

// Migrate copies an installation, every table row (IDs and sequence
// numbers as they are) and every blob, from one pair of stores to another,
// then verifies the copy: every row and every blob read back from the
// destination equals the source. The destination's metadata must be empty;
// blobs already there are kept if their bytes are right. The source must
// not change meanwhile (stop its servers).
func Migrate(ctx context.Context, srcMeta meta.Store, srcBlobs blob.Store, dstMeta meta.Store, dstBlobs blob.Store, log *slog.Logger) (*MigrateReport, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, ok := srcMeta.(meta.TableCopier)
	if !ok {
		return nil, errors.New("migrate: the source metadata store cannot export its rows")
	}
	dst, ok := dstMeta.(meta.TableCopier)
	if !ok {
		return nil, errors.New("migrate: the destination metadata store cannot import rows")
	}
	if err := checkEmpty(ctx, dstMeta); err != nil {
		return nil, err
	}
	rep := &MigrateReport{Rows: map[string]int{}}

	// Blobs first: once rows are in, the destination names them.
	err := srcBlobs.Walk(ctx, func(info blob.Info) error {
		rep.Blobs++
		copied, err := copyBlob(ctx, srcBlobs, dstBlobs, info.Digest)
		if err != nil {
			return err
		}
		if copied {
			rep.BlobsCopied++
			rep.Bytes += info.Size
		}
		if rep.Blobs%1000 == 0 {
			log.Info("copying blobs", "done", rep.Blobs)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("migrate blobs: %w", err)
	}
	log.Info("blobs copied", "blobs", rep.Blobs, "copied", rep.BlobsCopied, "bytes", rep.Bytes)

	for _, table := range meta.CopyTables {
		var cols []string
		var batch [][]any
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			err := dst.ImportRows(ctx, table, cols, batch)
			batch = batch[:0]
			return err
		}
		err := src.ExportRows(ctx, table, func(c []string, row []any) error {
			cols = c
			batch = append(batch, row)
			rep.Rows[table]++
			if len(batch) >= importBatch {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return rep, fmt.Errorf("migrate table %s: %w", table, err)
		}
		log.Info("table copied", "table", table, "rows", rep.Rows[table])
	}
	if err := dst.FinishImport(ctx); err != nil {
		return rep, fmt.Errorf("migrate: finish import: %w", err)
	}
	if err := compareTables(ctx, src, dst); err != nil {
		return rep, err
	}
	log.Info("migration verified: every row and blob of the source is in the destination")
	return rep, nil
}

// checkEmpty refuses a destination that already holds an installation.
func checkEmpty(ctx context.Context, m meta.Store) error {
	repos, err := m.ListRepos(ctx)
	if err != nil {
		return err
	}
	toks, err := m.ListTokens(ctx)
	if err != nil {
		return err
	}
	seq, err := m.LastSeq(ctx)
	if err != nil {
		return err
	}
	if len(repos) > 0 || len(toks) > 0 || seq > 0 {
		return fmt.Errorf("migrate: the destination database is not empty (%d repositories, %d tokens, %d events): migrate into a new database", len(repos), len(toks), seq)
	}
	return nil
}

// copyBlob stores a source blob in the destination, unless an intact copy
// is there already, and reports whether it wrote it.
func copyBlob(ctx context.Context, src, dst blob.Store, d blob.Digest) (bool, error) {
	if _, err := dst.Stat(ctx, d); err == nil {
		ok, err := sameDigest(ctx, dst, d)
		if err != nil || ok {
			return false, err
		}
		if err := dst.Delete(ctx, d); err != nil {
			return false, fmt.Errorf("replace corrupt blob %s in the destination: %w", d, err)
		}
	}
	r, err := src.Open(ctx, d)
	if err != nil {
		return false, err
	}
	defer r.Close()
	w, err := dst.Create(ctx, 0)
	if err != nil {
		return false, err
	}
	if _, err := io.Copy(w, r); err != nil {
		_ = w.Cancel(ctx)
		return false, fmt.Errorf("copy blob %s: %w", d, err)
	}
	if _, err := w.Commit(ctx, d); err != nil {
		return false, fmt.Errorf("copy blob %s: %w", d, err)
	}
	return true, nil
}

func sameDigest(ctx context.Context, b blob.Store, d blob.Digest) (bool, error) {
	_, ok, err := rehash(ctx, b, d)
	return ok, err
}

// compareTables reads every table back from both stores and compares them
// row by row.
func compareTables(ctx context.Context, src, dst meta.TableCopier) error {
	for _, table := range meta.CopyTables {
		var want [][]any
		if err := src.ExportRows(ctx, table, func(_ []string, row []any) error {
			want = append(want, row)
			return nil
		}); err != nil {
			return err
		}
		i := 0
		err := dst.ExportRows(ctx, table, func(_ []string, row []any) error {
			if i >= len(want) {
				return fmt.Errorf("migrate: verify %s: the destination has more rows than the source", table)
			}
			if !sameRow(want[i], row) {
				return fmt.Errorf("migrate: verify %s: row %d differs: source %v, destination %v", table, i, want[i], row)
			}
			i++
			return nil
		})
		if err != nil {
			return err
		}
		if i != len(want) {
			return fmt.Errorf("migrate: verify %s: the destination has %d rows, the source %d", table, i, len(want))
		}
	}
	return nil
}

// sameRow compares exported values, taking text and bytes as equal when
// their bytes are (the backends differ in which they return for a column).
func sameRow(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := norm(a[i]), norm(b[i])
		switch xv := x.(type) {
		case []byte:
			yv, ok := y.([]byte)
			if !ok || !bytes.Equal(xv, yv) {
				return false
			}
		default:
			if x != y {
				return false
			}
		}
	}
	return true
}

func norm(v any) any {
	switch t := v.(type) {
	case string:
		return []byte(t)
	case int:
		return int64(t)
	case int32:
		return int64(t)
	}
	return v
}
