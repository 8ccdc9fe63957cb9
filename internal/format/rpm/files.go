package rpm

import (
	"bytes"
	"strings"
	"unicode/utf8"
)

// files reads the file list. It returns the set of the package's files
// that createrepo_c lists in primary.xml, which decides which file
// requirements are dropped.
func (h *hdr) files(d *pkgData, c *cleaner) map[string]struct{} {
	dirs, okDirs := h.strs(tagDirnames)
	bases, okBases := h.strs(tagBasenames)
	var idx []uint64
	okIdx := false
	if okDirs || okBases {
		idx, okIdx = h.nums(tagDirIndexes, false)
	} else if old, ok := h.strs(tagOldFilenames); ok {
		// rpm converts a plain file name list (rpm v3) on load.
		dirs, bases, idx = splitOldFilenames(old)
		okDirs, okBases, okIdx = true, true, true
	}
	flags, okFlags := h.nums(tagFileFlags, false)
	modes, okModes := h.nums(tagFileModes, false)
	if h.err != nil || !(okDirs && okBases && okIdx && okFlags && okModes) {
		// createrepo_c lists no files unless all of these exist.
		return nil
	}
	n := len(bases)
	if len(idx) != n || len(flags) != n || len(modes) != n {
		h.err = errorf(ErrCorruptHeader, "file lists disagree: %d names, %d directory indexes, %d flags, %d modes", n, len(idx), len(flags), len(modes))
		return nil
	}
	d.dirs = dirs
	// dirState caches per directory: 0 unchecked, 1 usable as is, 2 needs
	// cleaning together with the file name.
	dirState := make([]uint8, len(dirs))
	d.files = make([]file, n)
	var primary map[string]struct{}
	var full []byte
	for i, base := range bases {
		if idx[i] >= uint64(len(dirs)) {
			h.err = errorf(ErrCorruptHeader, "file %q has directory index %d of %d directories", base, idx[i], len(dirs))
			return nil
		}
		di := int(idx[i])
		fl := file{dir: int32(di), base: base}
		switch {
		case modes[i]&0o170000 == 0o040000:
			fl.kind = kindDir
		case flags[i]&fileGhost != 0:
			fl.kind = kindGhost
		}
		full = append(append(full[:0], dirs[di]...), base...)
		if isPrimaryFile(full) {
			fl.primary = true
			if primary == nil {
				primary = make(map[string]struct{})
			}
			primary[string(full)] = struct{}{}
		}
		if dirState[di] == 0 {
			dirState[di] = 1
			if hasControl(dirs[di]) {
				c.fail("file directory", dirs[di])
			}
			if !utf8.ValidString(dirs[di]) || hasNonXML(dirs[di]) {
				dirState[di] = 2
			}
		}
		if hasControl(base) {
			c.fail("file name", base)
		}
		if dirState[di] == 2 || !utf8.ValidString(base) || hasNonXML(base) {
			// createrepo_c repairs the whole path at once.
			fl.dir = -1
			fl.base = c.clean("file name", string(full))
		}
		d.files[i] = fl
	}
	return primary
}

// splitOldFilenames is rpm's compressFilelist.
func splitOldFilenames(paths []string) (dirs, bases []string, idx []uint64) {
	seen := make(map[string]int)
	bases = make([]string, len(paths))
	idx = make([]uint64, len(paths))
	for i, p := range paths {
		cut := strings.LastIndexByte(p, '/') + 1
		dir := p[:cut]
		j, ok := seen[dir]
		if !ok {
			j = len(dirs)
			seen[dir] = j
			dirs = append(dirs, dir)
		}
		bases[i], idx[i] = p[cut:], uint64(j)
	}
	return dirs, bases, idx
}

// isPrimaryFile is createrepo_c's cr_is_primary: files under /etc/, any
// path containing "bin/", and /usr/lib/sendmail.
func isPrimaryFile(path []byte) bool {
	return bytes.HasPrefix(path, []byte("/etc/")) ||
		bytes.Contains(path, []byte("bin/")) ||
		string(path) == "/usr/lib/sendmail"
}
