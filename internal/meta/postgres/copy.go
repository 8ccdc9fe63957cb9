package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/packyard/packyard/internal/meta"
)

var _ meta.TableCopier = (*Store)(nil)

// ExportRows reads a table in primary-key order. Values are int64 for
// BIGINT columns, string for TEXT and []byte for BYTEA.
func (s *Store) ExportRows(ctx context.Context, table string, fn func(cols []string, row []any) error) error {
	key, ok := meta.CopyKeys[table]
	if !ok || !slices.Contains(meta.CopyTables, table) {
		return fmt.Errorf("export rows: unknown table %q", table)
	}
	// One statement: a retry would hand fn rows twice.
	rows, err := s.pool.Query(ctx, `SELECT * FROM `+table+` ORDER BY `+key)
	if err != nil {
		return fmt.Errorf("export %s: %w", table, dbErr(err))
	}
	defer rows.Close()
	var cols []string
	for _, f := range rows.FieldDescriptions() {
		cols = append(cols, f.Name)
	}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("export %s: %w", table, err)
		}
		if err := fn(cols, vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("export %s: %w", table, dbErr(err))
	}
	return nil
}

// ImportRows inserts rows, with the COPY protocol, in one transaction that
// holds the write lock. Text given for a BYTEA column and bytes for a TEXT
// one are converted (the SQLite driver returns either for either), and nil
// for a BYTEA column is empty bytes (the SQLite driver's empty blob): every
// column is NOT NULL.
func (s *Store) ImportRows(ctx context.Context, table string, cols []string, rows [][]any) error {
	if !slices.Contains(meta.CopyTables, table) {
		return fmt.Errorf("import rows: unknown table %q", table)
	}
	err := s.write(ctx, locked, func(tx pgx.Tx) error {
		types := map[string]string{}
		trows, err := tx.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1`, table)
		if err != nil {
			return err
		}
		var name, typ string
		if _, err := pgx.ForEachRow(trows, []any{&name, &typ}, func() error { types[name] = typ; return nil }); err != nil {
			return err
		}
		for _, c := range cols {
			if _, ok := types[c]; !ok {
				return fmt.Errorf("table %s has no column %q", table, c)
			}
		}
		conv := make([][]any, len(rows))
		for i, r := range rows {
			if len(r) != len(cols) {
				return fmt.Errorf("row %d has %d values for %d columns", i, len(r), len(cols))
			}
			conv[i] = make([]any, len(r))
			for j, v := range r {
				switch x := v.(type) {
				case nil:
					if types[cols[j]] == "bytea" {
						v = []byte{}
					}
				case string:
					if types[cols[j]] == "bytea" {
						v = []byte(x)
					}
				case []byte:
					switch {
					case types[cols[j]] == "text":
						v = string(x)
					case x == nil:
						v = []byte{}
					}
				}
				conv[i][j] = v
			}
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(conv))
		return err
	})
	if err != nil {
		return fmt.Errorf("import into %s (%s): %w", table, strings.Join(cols, ", "), dbErr(err))
	}
	return nil
}

// FinishImport moves the identity sequences past the imported IDs and
// sequence numbers (ResetSequences).
func (s *Store) FinishImport(ctx context.Context) error {
	return s.ResetSequences(ctx)
}
