package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/packyard/packyard/bench/internal/gnupg"
)

// Every tool publishes one distribution with one component, and
// Architecture: all packages in each architecture's Packages.
const (
	dist      = "bookworm"
	component = "main"
)

// arches are the binary architectures of debtest.Corpus (besides all).
var arches = []string{"amd64", "arm64"}

// fetchFunc reads a file of a published repository by its path below the
// repository root ("dists/bookworm/InRelease").
type fetchFunc func(rel string) ([]byte, error)

// packagesPath is the uncompressed Packages index of arch.
func packagesPath(arch string) string {
	return component + "/binary-" + arch + "/Packages"
}

// releaseHashes returns the SHA256 section of a Release or InRelease file:
// path (relative to dists/DIST/) → "hash size".
func releaseHashes(release []byte) map[string]string {
	out := map[string]string{}
	in := false
	for _, l := range strings.Split(string(release), "\n") {
		switch {
		case strings.HasPrefix(l, " ") && in:
			if f := strings.Fields(l); len(f) == 3 {
				out[f[2]] = f[0] + " " + f[1]
			}
		case strings.HasPrefix(l, "SHA256:"):
			in = true
		default:
			in = false
		}
	}
	return out
}

// indexState is what the InRelease of dists/DIST says about the Packages
// index of each architecture; it changes whenever a Packages index does.
func indexState(fetch fetchFunc) (map[string]string, error) {
	b, err := fetch("dists/" + dist + "/InRelease")
	if err != nil {
		return nil, err
	}
	h := releaseHashes(b)
	out := map[string]string{}
	for _, a := range arches {
		out[a] = h[packagesPath(a)]
	}
	return out, nil
}

// changedFor reports whether the index that a package of arch lands in
// (both for Architecture: all) changed between two states.
func changedFor(before, after map[string]string, arch string) bool {
	for _, a := range arches {
		if (arch == a || arch == "all") && before[a] == after[a] {
			return false
		}
	}
	return true
}

// verifyPublished checks a published distribution once, at the end of a
// tool's run: InRelease and Release.gpg verify with gpgv against keyring;
// each architecture's Packages has the hash and size InRelease gives and
// lists exactly the packages of want (those of its architecture and all)
// with their SHA256, which includes the last sample.
func verifyPublished(fetch fetchFunc, keyring, tmp string, want []debFile) error {
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{}
	for _, name := range []string{"InRelease", "Release", "Release.gpg"} {
		b, err := fetch("dists/" + dist + "/" + name)
		if err != nil {
			return err
		}
		files[name] = b
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return err
		}
	}
	if err := gnupg.Verify(keyring, filepath.Join(tmp, "InRelease")); err != nil {
		return err
	}
	if err := gnupg.VerifyDetached(keyring, filepath.Join(tmp, "Release.gpg"), filepath.Join(tmp, "Release")); err != nil {
		return err
	}
	hashes := releaseHashes(files["InRelease"])
	for _, arch := range arches {
		p := packagesPath(arch)
		b, err := fetch("dists/" + dist + "/" + p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		if got, w := hex.EncodeToString(sum[:])+" "+strconv.Itoa(len(b)), hashes[p]; got != w {
			return fmt.Errorf("%s: sha256 and size %q, InRelease says %q", p, got, w)
		}
		listed := parsePackages(b)
		n := 0
		for _, f := range want {
			if f.Arch != arch && f.Arch != "all" {
				continue
			}
			n++
			key := f.Package + " " + f.Version
			if got, ok := listed[key]; !ok {
				return fmt.Errorf("%s does not list %s", p, key)
			} else if got != f.SHA256 {
				return fmt.Errorf("%s lists %s with SHA256 %s, the file has %s", p, key, got, f.SHA256)
			}
		}
		if len(listed) != n {
			return fmt.Errorf("%s lists %d packages, want %d", p, len(listed), n)
		}
	}
	return nil
}

// parsePackages returns "Package Version" → SHA256 for each stanza of a
// Packages index.
func parsePackages(b []byte) map[string]string {
	out := map[string]string{}
	for _, st := range bytes.Split(b, []byte("\n\n")) {
		var name, version, sha string
		for _, l := range strings.Split(string(st), "\n") {
			k, v, ok := strings.Cut(l, ": ")
			if !ok {
				continue
			}
			switch k {
			case "Package":
				name = v
			case "Version":
				version = v
			case "SHA256":
				sha = v
			}
		}
		if name != "" {
			out[name+" "+version] = sha
		}
	}
	return out
}

// fileFetch reads a published repository from a directory.
func fileFetch(root string) fetchFunc {
	return func(rel string) ([]byte, error) { return os.ReadFile(filepath.Join(root, rel)) }
}
