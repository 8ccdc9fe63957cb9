package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/packyard/packyard/internal/meta"
)

var _ meta.TableCopier = (*Store)(nil)

// ExportRows reads a table in primary-key order (meta.CopyKeys).
func (s *Store) ExportRows(ctx context.Context, table string, fn func(cols []string, row []any) error) error {
	if !slices.Contains(meta.CopyTables, table) {
		return fmt.Errorf("export rows: unknown table %q", table)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT * FROM `+table+` ORDER BY `+meta.CopyKeys[table])
	if err != nil {
		return fmt.Errorf("export %s: %w", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("export %s: %w", table, err)
		}
		if err := fn(cols, vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ImportRows inserts rows in one transaction. AUTOINCREMENT keys given
// explicitly move sqlite_sequence along, so FinishImport has nothing to do.
func (s *Store) ImportRows(ctx context.Context, table string, cols []string, rows [][]any) error {
	if !slices.Contains(meta.CopyTables, table) {
		return fmt.Errorf("import rows: unknown table %q", table)
	}
	for _, c := range cols {
		if c == "" || strings.Trim(c, "abcdefghijklmnopqrstuvwxyz_") != "" {
			return fmt.Errorf("import rows into %s: bad column name %q", table, c)
		}
	}
	marks := make([]string, len(cols))
	for i := range marks {
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	q := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES (` + strings.Join(marks, ", ") + `)`
	return s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, r := range rows {
			if _, err := st.ExecContext(ctx, r...); err != nil {
				return fmt.Errorf("import into %s: %w", table, err)
			}
		}
		return nil
	})
}

// FinishImport has nothing to do for SQLite.
func (s *Store) FinishImport(context.Context) error { return nil }
