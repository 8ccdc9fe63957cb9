package archtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// BuildMakepkg builds s with the real makepkg under dir (created if
// needed) and returns the path of the package, dir/FileName(s). It writes
// a PKGBUILD whose package() copies a tree holding s's files, and runs
//
//	makepkg --force --nodeps
//
// with SOURCE_DATE_EPOCH, PACKAGER, and a configuration that is the
// system's (MAKEPKG_CONF or /etc/makepkg.conf) with CARCH set to s's
// architecture (nothing is compiled) and PKGEXT to its compression.
// makepkg refuses to run as root, so as root it runs as nobody through
// runuser; dir is then made writable by everyone, and its parents must
// let nobody through (t.TempDir's do not).
func BuildMakepkg(dir string, s Spec) (string, error) {
	tool, err := exec.LookPath("makepkg")
	if err != nil {
		return "", err
	}
	if _, err := Tar(s); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	work, err := os.MkdirTemp(dir, "makepkg-")
	if err != nil {
		return "", err
	}
	root := filepath.Join(work, "root")
	if err := writeTree(root, s.Files); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(work, "PKGBUILD"), pkgbuild(s), 0o644); err != nil {
		return "", err
	}
	conf, err := os.ReadFile(cmpOrString(os.Getenv("MAKEPKG_CONF"), "/etc/makepkg.conf"))
	if err != nil {
		return "", err
	}
	conf = append(conf, fmt.Sprintf("\nCARCH=%s\nPKGEXT=.pkg.tar.%s\n", shellQuote(s.Arch), s.compression())...)
	if err := os.WriteFile(filepath.Join(work, "makepkg.conf"), conf, 0o644); err != nil {
		return "", err
	}
	env := []string{
		"MAKEPKG_CONF=" + filepath.Join(work, "makepkg.conf"),
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(s.buildDate().Unix(), 10),
		"PACKAGER=" + s.Packager,
		"PKGDEST=" + dir,
		"SRCDEST=" + work,
		"BUILDDIR=" + filepath.Join(work, "build"),
		"LC_ALL=C",
	}
	args := []string{"--force", "--nodeps", "--noconfirm"}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			return "", fmt.Errorf("archtest: makepkg does not run as root and runuser is missing: %w", err)
		}
		// nobody writes the package into dir and builds in work.
		for _, d := range []string{dir, work} {
			if err := os.Chmod(d, 0o777); err != nil {
				return "", err
			}
		}
		cmd = exec.Command(runuser, append(append([]string{"-u", "nobody", "--", "env"}, env...), append([]string{tool}, args...)...)...)
	} else {
		cmd = exec.Command(tool, args...)
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Dir = work
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("archtest: makepkg %s: %v\n%s", s.Name, err, out.String())
	}
	p := filepath.Join(dir, FileName(s))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("archtest: makepkg %s did not write %s:\n%s", s.Name, p, out.String())
	}
	return p, nil
}

func cmpOrString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// writeTree lays out files under root with their modes.
func writeTree(root string, files []File) error {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(path.Clean("/"+f.Path)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		var err error
		switch {
		case f.Dir:
			err = os.MkdirAll(p, 0o755)
		case f.Link != "":
			err = os.Symlink(f.Link, p)
		default:
			err = os.WriteFile(p, f.Body, 0o644)
		}
		if err != nil {
			return err
		}
		if f.Link == "" && f.Mode != 0 {
			if err := os.Chmod(p, os.FileMode(f.Mode)); err != nil {
				return err
			}
		}
	}
	return nil
}

// shellQuote quotes s for bash.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// pkgbuild returns a PKGBUILD describing s whose package() copies the
// tree beside it.
func pkgbuild(s Spec) []byte {
	var b strings.Builder
	scalar := func(name, v string) { fmt.Fprintf(&b, "%s=%s\n", name, shellQuote(v)) }
	array := func(name string, vs []string) {
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = shellQuote(v)
		}
		fmt.Fprintf(&b, "%s=(%s)\n", name, strings.Join(q, " "))
	}
	v := s.Version
	if e, rest, ok := strings.Cut(v, ":"); ok {
		scalar("epoch", e)
		v = rest
	}
	i := strings.LastIndexByte(v, '-')
	scalar("pkgname", s.Name)
	if s.Base != "" {
		scalar("pkgbase", s.Base)
	}
	scalar("pkgver", v[:i])
	scalar("pkgrel", v[i+1:])
	scalar("pkgdesc", s.Desc)
	scalar("url", s.URL)
	array("arch", []string{s.Arch})
	array("license", s.Licenses)
	array("groups", s.Groups)
	array("depends", s.Depends)
	array("optdepends", s.OptDepends)
	array("makedepends", s.MakeDepends)
	array("checkdepends", s.CheckDepends)
	array("provides", s.Provides)
	array("conflicts", s.Conflicts)
	array("replaces", s.Replaces)
	array("backup", s.Backup)
	array("options", []string{"!strip", "!zipman", "!purge", "!debug", "emptydirs"})
	b.WriteString("package() {\n\tcp -a \"$startdir/root/.\" \"$pkgdir/\"\n}\n")
	return []byte(b.String())
}
