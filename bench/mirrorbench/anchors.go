package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/proc"
)

// The anchors: `dnf reposync` (dnf 4, dnf-plugins-core) for the RPM
// upstream and `aptly mirror update` for the APT upstream, each with a
// private configuration under its scratch directory, both checking the
// upstream's signature with its key, as packyard does.

// runTool runs a command with its output in a log file, measuring it;
// on failure the error carries the log's end. The standard output also
// goes to stdout, if not nil.
func runTool(ctx context.Context, logPath string, env []string, stdout io.Writer, name string, args ...string) (proc.Usage, error) {
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return proc.Usage{}, err
	}
	defer lf.Close()
	fmt.Fprintf(lf, "\n$ %s %s\n", name, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(lf, stdout)
	}
	cmd.Env = append(append(os.Environ(), "LC_ALL=C.UTF-8"), env...)
	u, err := proc.Measure(cmd)
	if err != nil {
		return u, fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail(logPath, 2000))
	}
	return u, nil
}

// tail is the last n bytes of a file.
func tail(path string, n int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return string(b)
}

// dnfSyncer is `dnf reposync` with its own configuration, cache and
// persist directories, and a repository file for the upstream with
// repo_gpgcheck=1 (repomd.xml's signature checked against gpgkey=, the
// upstream's armored public key) and gpgcheck=0 (the packages are not
// signed). The incremental sync is the same command into the same
// directory: reposync downloads the packages it does not have yet.
type dnfSyncer struct {
	dir, conf, dest, log string
}

func newDnfSyncer(ctx context.Context, cfg *config, up *upstreamStates, format, url, dir string) (syncer, error) {
	d := &dnfSyncer{dir: dir, conf: filepath.Join(dir, "dnf.conf"), dest: filepath.Join(dir, "mirror"), log: filepath.Join(dir, "dnf.log")}
	reposDir := filepath.Join(dir, "repos.d")
	for _, p := range []string{reposDir, d.dest} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(`[main]
cachedir=%[1]s/cache
persistdir=%[1]s/persist
logdir=%[1]s/log
reposdir=%[2]s
gpgcheck=0
keepcache=0
install_weak_deps=0
`, dir, reposDir)
	repo := fmt.Sprintf(`[up]
name=packyard bench upstream
baseurl=%s
enabled=1
gpgcheck=0
repo_gpgcheck=1
gpgkey=file://%s
metadata_expire=0
skip_if_unavailable=0
`, url, up.keyArmored)
	if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(reposDir, "up.repo"), []byte(repo), 0o644); err != nil {
		return nil, err
	}
	return d, nil
}

// dnfArgs is the measured command.
func (d *dnfSyncer) args() []string {
	return []string{"-c", d.conf, "--releasever=bench", "-y", "--refresh",
		"reposync", "--repoid=up", "--download-metadata", "--norepopath", "-p", d.dest}
}

func (d *dnfSyncer) sync(ctx context.Context, incremental bool, want []corpus.File) (measurement, error) {
	u, err := runTool(ctx, d.log, nil, nil, "dnf", d.args()...)
	return measurement{wall: u.Wall, rss: u.MaxRSS, cpu: u.CPU}, err
}

func (d *dnfSyncer) verify(ctx context.Context, want []corpus.File) error {
	if _, err := os.Stat(filepath.Join(d.dest, "repodata", "repomd.xml")); err != nil {
		return fmt.Errorf("no repodata downloaded: %w", err)
	}
	return sameFiles(d.dest, ".rpm", want)
}

func (d *dnfSyncer) pids() []int { return nil }
func (d *dnfSyncer) close()      {}

// aptlySyncer is an aptly root of its own: `aptly mirror create` (part of
// the setup, not timed) of the distribution, component and architecture
// with -keyring naming the upstream's binary public key (aptly checks
// InRelease with gpgv), then `aptly mirror update`, timed, for the initial
// and again for the incremental sync.
type aptlySyncer struct {
	dir, conf, root, log, keyring string
	env                           []string
}

const aptlyMirror = "up-deb"

func newAptlySyncer(ctx context.Context, cfg *config, up *upstreamStates, format, url, dir string) (syncer, error) {
	a := &aptlySyncer{dir: dir, conf: filepath.Join(dir, "aptly.conf"), root: filepath.Join(dir, "root"),
		log: filepath.Join(dir, "aptly.log"), keyring: up.keyBinary}
	gnupgHome := filepath.Join(dir, "gnupg")
	if err := os.MkdirAll(gnupgHome, 0o700); err != nil {
		return nil, err
	}
	// A home of its own keeps gpgv from reading root's trustedkeys.gpg.
	a.env = []string{"GNUPGHOME=" + gnupgHome}
	conf, _ := json.Marshal(map[string]any{"rootDir": a.root, "gpgProvider": "gpg", "architectures": []string{debArch}})
	if err := os.WriteFile(a.conf, conf, 0o644); err != nil {
		return nil, err
	}
	if _, err := runTool(ctx, a.log, a.env, nil, "aptly", "-config", a.conf, "mirror", "create",
		"-keyring="+a.keyring, "-architectures="+debArch, aptlyMirror, url, dist, component); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *aptlySyncer) sync(ctx context.Context, incremental bool, want []corpus.File) (measurement, error) {
	u, err := runTool(ctx, a.log, a.env, nil, "aptly", "-config", a.conf, "mirror", "update", "-keyring="+a.keyring, aptlyMirror)
	return measurement{wall: u.Wall, rss: u.MaxRSS, cpu: u.CPU}, err
}

var aptlyCount = regexp.MustCompile(`(?m)^Number of packages: (\d+)`)

func (a *aptlySyncer) verify(ctx context.Context, want []corpus.File) error {
	cmd := exec.CommandContext(ctx, "aptly", "-config", a.conf, "mirror", "show", aptlyMirror)
	cmd.Env = append(os.Environ(), a.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("aptly mirror show: %w\n%s", err, out)
	}
	m := aptlyCount.FindSubmatch(out)
	if m == nil {
		return fmt.Errorf("aptly mirror show: no package count in\n%s", out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n != len(want) {
		return fmt.Errorf("aptly mirror show: %d packages, want %d", n, len(want))
	}
	return sameFiles(filepath.Join(a.root, "pool"), ".deb", want)
}

func (a *aptlySyncer) pids() []int { return nil }
func (a *aptlySyncer) close()      {}

// sameFiles checks that the files named *ext under dir are want: as many,
// with the same names and sizes, and with want's bytes for the last few
// (the incremental sync's new ones).
func sameFiles(dir, ext string, want []corpus.File) error {
	got := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.Type().IsRegular() && strings.HasSuffix(p, ext) {
			name := filepath.Base(p)
			// aptly's pool names a file <hash>_NAME (in pool/xx/yy/).
			if h, rest, ok := strings.Cut(name, "_"); ok && isHex(h) {
				name = rest
			}
			got[name] = p
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d %s files under %s, want %d", len(got), ext, dir, len(want))
	}
	for i, f := range want {
		p := got[f.Name]
		if p == "" {
			return fmt.Errorf("%s is missing under %s", f.Name, dir)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.Size() != f.Size {
			return fmt.Errorf("%s: %d bytes, want %d", p, fi.Size(), f.Size)
		}
		if i >= len(want)-10 {
			if err := sameBytes(p, f.Path); err != nil {
				return err
			}
		}
	}
	return nil
}

func isHex(s string) bool {
	if len(s) < 8 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func sameBytes(got, want string) error {
	a, err := os.ReadFile(got)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(want)
	if err != nil {
		return err
	}
	if !bytes.Equal(a, b) {
		return fmt.Errorf("%s differs from the upstream's %s", got, filepath.Base(want))
	}
	return nil
}
