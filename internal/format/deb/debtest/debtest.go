// Package debtest builds Debian binary packages for tests and benchmarks:
// a package from a Spec, in pure Go (Build) or with the real dpkg-deb
// (BuildDpkg); generated corpora of distinct realistic packages (Corpus);
// and named malformed packages derived from a valid one (Malformed).
//
// The layout is dpkg-deb's (deb(5),
// https://manpages.debian.org/bookworm/dpkg-dev/deb.5.en.html): an ar
// archive of debian-binary ("2.0\n"), control.tar.* and data.tar.*, the
// tar archives in GNU format with "./"-prefixed names owned by root, and
// the control file as deb-control(5) describes it.
package debtest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/packyard/packyard/internal/format/deb"
)

// File is one file of a package's data.tar.
type File struct {
	// Path is where the file is installed, e.g. "/usr/bin/foo".
	Path string
	Body []byte
	// Mode holds the permission bits; 0 means 0644 for a file, 0755 for a
	// directory.
	Mode int64
	// Dir makes the entry a directory.
	Dir bool
}

// Spec describes a binary package.
type Spec struct {
	Package, Version, Architecture, Maintainer string
	// Description is the synopsis, then "\n"-separated lines of the long
	// description, written with a leading space and " ." for empty lines.
	Description string

	Section, Priority, Source, Homepage, MultiArch string

	Depends, PreDepends, Recommends, Suggests, Conflicts, Breaks, Replaces, Provides, Enhances string

	// InstalledSize is the Installed-Size field in KiB; 0 omits it.
	InstalledSize int
	// Extra lists control fields written after the others, in order, as
	// deb.Field values (a Value starting with "\n" is written after
	// "Name:" without a space).
	Extra []deb.Field

	Files []File
	// Compression is the compression of both control.tar and data.tar:
	// "gz", "xz", "zst" or "none"; "" means "xz", dpkg-deb's default.
	Compression string
	// ModTime is the modification time of every member and entry; zero
	// means 2024-01-02 03:04:05 UTC.
	ModTime time.Time
}

// Control returns the control file of s: its fields in the order
// dpkg-gencontrol writes them, empty ones left out, then Extra.
func (s Spec) Control() []byte {
	var b strings.Builder
	add := func(name, value string) {
		switch {
		case value == "":
		case strings.HasPrefix(value, "\n"):
			b.WriteString(name + ":" + value + "\n")
		default:
			b.WriteString(name + ": " + value + "\n")
		}
	}
	add("Package", s.Package)
	add("Source", s.Source)
	add("Version", s.Version)
	add("Architecture", s.Architecture)
	add("Maintainer", s.Maintainer)
	if s.InstalledSize != 0 {
		add("Installed-Size", strconv.Itoa(s.InstalledSize))
	}
	add("Pre-Depends", s.PreDepends)
	add("Depends", s.Depends)
	add("Recommends", s.Recommends)
	add("Suggests", s.Suggests)
	add("Enhances", s.Enhances)
	add("Breaks", s.Breaks)
	add("Conflicts", s.Conflicts)
	add("Replaces", s.Replaces)
	add("Provides", s.Provides)
	add("Section", s.Section)
	add("Priority", s.Priority)
	add("Multi-Arch", s.MultiArch)
	add("Homepage", s.Homepage)
	add("Description", descriptionValue(s.Description))
	for _, f := range s.Extra {
		if f.Value == "" {
			b.WriteString(f.Name + ":\n")
			continue
		}
		add(f.Name, f.Value)
	}
	return []byte(b.String())
}

// descriptionValue turns a synopsis and long description lines into a
// field value.
func descriptionValue(d string) string {
	lines := strings.Split(d, "\n")
	for i := 1; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "" {
			lines[i] = " ."
		} else {
			lines[i] = " " + lines[i]
		}
	}
	return strings.Join(lines, "\n")
}

func (s Spec) compression() string {
	if s.Compression == "" {
		return "xz"
	}
	return s.Compression
}

func (s Spec) modTime() time.Time {
	if s.ModTime.IsZero() {
		return defaultTime
	}
	return s.ModTime
}

// Build returns s as a .deb laid out as dpkg-deb lays it out: members
// debian-binary, control.tar.* (./, ./control and, when there are files,
// ./md5sums) and data.tar.* (./ and every file with its parent
// directories, sorted). The output depends only on s.
func Build(s Spec) ([]byte, error) {
	members, err := Members(s)
	if err != nil {
		return nil, err
	}
	return archive(s.modTime(), members), nil
}

// Members returns the ar members Build writes for s, so that a test can
// add, drop or reorder some and pass them to Archive.
func Members(s Spec) ([]Member, error) {
	return members(s, s.Control())
}

// members builds the members of s with the given control file.
func members(s Spec, control []byte) ([]Member, error) {
	ext, err := extension(s.compression())
	if err != nil {
		return nil, err
	}
	data, sums, err := dataTar(s)
	if err != nil {
		return nil, err
	}
	entries := []tarEntry{directory("./", 0o755), regular("./control", 0o644, control)}
	if len(sums) > 0 {
		entries = append(entries, regular("./md5sums", 0o644, sums))
	}
	ctl, err := compress(s.compression(), tarArchive(entries, s.modTime()))
	if err != nil {
		return nil, err
	}
	if data, err = compress(s.compression(), data); err != nil {
		return nil, err
	}
	return []Member{
		{Name: "debian-binary", Data: []byte("2.0\n")},
		{Name: "control.tar" + ext, Data: ctl},
		{Name: "data.tar" + ext, Data: data},
	}, nil
}

// cleanPath turns a File.Path into a relative, clean path.
func cleanPath(p string) (string, error) {
	clean := path.Clean("/" + p)[1:]
	if clean == "" || strings.Contains(p, "..") {
		return "", fmt.Errorf("debtest: invalid file path %q", p)
	}
	return clean, nil
}

// dataTar returns the data.tar of s and its md5sums file.
func dataTar(s Spec) (tarball, sums []byte, err error) {
	type item struct {
		file File
		dir  bool
	}
	items := map[string]item{}
	for _, f := range s.Files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, nil, err
		}
		if _, dup := items[p]; dup {
			return nil, nil, fmt.Errorf("debtest: file %q listed twice", f.Path)
		}
		items[p] = item{file: f, dir: f.Dir}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := items[d]; !ok {
				items[d] = item{dir: true}
			}
		}
	}
	paths := make([]string, 0, len(items))
	for p := range items {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	entries := []tarEntry{directory("./", 0o755)}
	var md5sums bytes.Buffer
	for _, p := range paths {
		it := items[p]
		mode := it.file.Mode
		if it.dir {
			if mode == 0 {
				mode = 0o755
			}
			entries = append(entries, directory("./"+p+"/", mode))
			continue
		}
		if mode == 0 {
			mode = 0o644
		}
		entries = append(entries, regular("./"+p, mode, it.file.Body))
		sum := md5.Sum(it.file.Body)
		fmt.Fprintf(&md5sums, "%s  %s\n", hex.EncodeToString(sum[:]), p)
	}
	return tarArchive(entries, s.modTime()), md5sums.Bytes(), nil
}

// BuildDpkg builds s with the real dpkg-deb under dir (created if
// needed): it lays out a package tree with DEBIAN/control and
// DEBIAN/md5sums, runs
//
//	dpkg-deb --root-owner-group -Z<compression> --build TREE OUT.deb
//
// with SOURCE_DATE_EPOCH set to s's modification time, and returns the
// path of OUT.deb, dir/NAME_VERSION_ARCH.deb (version without epoch).
func BuildDpkg(dir string, s Spec) (string, error) {
	tool, err := exec.LookPath("dpkg-deb")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	root, err := os.MkdirTemp(dir, "tree-")
	if err != nil {
		return "", err
	}
	_, sums, err := dataTar(s)
	if err != nil {
		return "", err
	}
	write := func(rel string, body []byte, mode os.FileMode) error {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, body, mode); err != nil {
			return err
		}
		return os.Chmod(p, mode) // whatever the umask
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return "", err
	}
	if err := write("DEBIAN/control", s.Control(), 0o644); err != nil {
		return "", err
	}
	if len(sums) > 0 {
		if err := write("DEBIAN/md5sums", sums, 0o644); err != nil {
			return "", err
		}
	}
	for _, f := range s.Files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return "", err
		}
		mode := os.FileMode(f.Mode)
		if f.Dir {
			if mode == 0 {
				mode = 0o755
			}
			full := filepath.Join(root, filepath.FromSlash(p))
			if err := os.MkdirAll(full, mode); err != nil {
				return "", err
			}
			if err := os.Chmod(full, mode); err != nil {
				return "", err
			}
			continue
		}
		if mode == 0 {
			mode = 0o644
		}
		if err := write(p, f.Body, mode); err != nil {
			return "", err
		}
	}
	comp := map[string]string{"gz": "gzip", "xz": "xz", "zst": "zstd", "none": "none"}[s.compression()]
	if comp == "" {
		_, err := extension(s.compression())
		return "", err
	}
	v := s.Version
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", s.Package, v, s.Architecture))
	cmd := exec.Command(tool, "--root-owner-group", "-Z"+comp, "--build", root, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(s.modTime().Unix(), 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("debtest: dpkg-deb --build %s: %v: %s", s.Package, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
