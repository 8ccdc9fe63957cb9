package proxy

import (
	"path"
	"strings"

	"github.com/packyard/packyard/internal/meta"
)

// kind is how a path is cached.
type kind int

const (
	// kindImmutable files never change under their path: cached forever.
	kindImmutable kind = iota
	// kindIndex files (APT Packages at fixed paths, unhashed repodata)
	// are named by a pointer and fetched with it.
	kindIndex
	// kindPointer files are revalidated after max_age, as a group.
	kindPointer
)

// class is what classify says about a path.
type class struct {
	kind kind
	// A pointer group's files are dir + main + each of sfx, the main one
	// first; path, the file asked for, is member self. The names are
	// made when asked for (member), not for every request.
	dir, main, path string
	sfx             []string
	self            int
	// byHash is the sha256 a by-hash path names ("" if none).
	byHash string
}

// The suffixes of each format's pointer group members.
var (
	rpmPointer  = []string{"", ".asc", ".key"}
	debPointer  = []string{"InRelease", "Release", "Release.gpg"}
	archPointer = []string{"", ".sig"}
)

// pointer returns the class of path, a member of the pointer group
// dir + main + sfx.
func pointer(path, dir, main string, sfx []string) class {
	c := class{kind: kindPointer, dir: dir, main: main, path: path, sfx: sfx, self: -1}
	base := path[len(dir):]
	for i, x := range sfx {
		if len(base) == len(main)+len(x) && base[:len(main)] == main && base[len(main):] == x {
			c.self = i
		}
	}
	return c
}

// member returns the path of the group's member i (0: the main one).
func (c class) member(i int) string {
	if i == c.self {
		return c.path
	}
	return c.dir + c.main + c.sfx[i]
}

// group returns the path of the group's main file.
func (c class) group() string { return c.member(0) }

// count returns the number of the group's members.
func (c class) count() int { return len(c.sfx) }

// classify sorts a repository path into its class, by format:
//
//	rpm   [DIR/]repodata/repomd.xml{,.asc,.key}        pointer group
//	      [DIR/]repodata/other files                   index
//	deb   dists/DIST/{InRelease,Release,Release.gpg}  pointer group
//	      dists/…/by-hash/SHA256/HEX                    immutable (by hash)
//	      dists/… other files                           index
//	arch  [DIR/]NAME.{db,files}[.tar.EXT]{,.sig}        pointer group
//	everything else (packages, pool/, …)                immutable
func classify(format, p string) class {
	dir, base := path.Split(p)
	switch format {
	case meta.FormatRPM:
		for _, sfx := range rpmPointer {
			if strings.HasSuffix(p, "repodata/repomd.xml"+sfx) && base == "repomd.xml"+sfx {
				return pointer(p, dir, "repomd.xml", rpmPointer)
			}
		}
		if strings.HasPrefix(p, "repodata/") || strings.Contains(p, "/repodata/") {
			if hasHexPrefix(base) {
				return class{kind: kindImmutable}
			}
			return class{kind: kindIndex}
		}
	case meta.FormatDeb:
		if !strings.HasPrefix(p, "dists/") {
			break
		}
		if i := strings.Index(p, "/by-hash/SHA256/"); i >= 0 {
			h := p[i+len("/by-hash/SHA256/"):]
			if isHex64(h) {
				return class{kind: kindImmutable, byHash: h}
			}
		}
		if (base == "InRelease" || base == "Release" || base == "Release.gpg") && isDistDir(dir) {
			return pointer(p, dir, "", debPointer)
		}
		return class{kind: kindIndex}
	case meta.FormatArch:
		main := strings.TrimSuffix(base, ".sig")
		if isArchDB(main) {
			return pointer(p, dir, main, archPointer)
		}
	}
	return class{kind: kindImmutable}
}

// isDistDir reports whether dir ("dists/…/") is a distribution's directory
// rather than one of its component's (which hold Release files of their
// own, named by the distribution's Release).
func isDistDir(dir string) bool {
	if dir == "dists/" {
		return false
	}
	rest := strings.TrimSuffix(strings.TrimPrefix(dir, "dists/"), "/")
	for {
		seg, more, found := strings.Cut(rest, "/")
		if seg == "" || strings.HasPrefix(seg, "binary-") || seg == "source" || seg == "i18n" || seg == "dep11" || seg == "cnf" || seg == "debian-installer" {
			return false
		}
		if !found {
			return true
		}
		rest = more
	}
}

// isArchDB reports whether a file name is a pacman database.
func isArchDB(name string) bool {
	for _, kind := range []string{".db", ".files"} {
		i := strings.LastIndex(name, kind)
		if i <= 0 {
			continue
		}
		switch name[i+len(kind):] {
		case "", ".tar", ".tar.gz", ".tar.zst", ".tar.xz", ".tar.bz2":
			return !strings.Contains(name, ".pkg.tar")
		}
	}
	return false
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// hasHexPrefix reports whether a repodata file name starts with a checksum
// (createrepo's unique file names): its content never changes.
func hasHexPrefix(base string) bool {
	h, _, ok := strings.Cut(base, "-")
	if !ok || len(h) < 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// cacheControl is what a client's own cache is told.
func (c class) cacheControl(*repoConfig) string {
	if c.kind == kindImmutable {
		return "public, max-age=31536000, immutable"
	}
	return "public, max-age=10, must-revalidate"
}
