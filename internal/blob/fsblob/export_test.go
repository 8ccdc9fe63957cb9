package fsblob

// UseNamedTemps makes s write through named temporary files, as on a
// filesystem without O_TMPFILE.
func (s *Store) UseNamedTemps() { s.noTmpfile.Store(true) }

// UsesTmpfile reports whether s writes through unnamed files.
func (s *Store) UsesTmpfile() bool { return !s.noTmpfile.Load() }
