package upstream

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Release is what a mirror reads from an APT Release file
// (https://wiki.debian.org/DebianRepository/Format#A.22Release.22_files).
type Release struct {
	Suite, Codename string
	Components      []string
	Architectures   []string
	// AcquireByHash is set when clients may fetch indexes by hash.
	AcquireByHash bool
	// Files is the SHA256 list, paths relative to the Release file's
	// directory. Every file is optional: Release files list indexes
	// (uncompressed ones, for instance) that mirrors need not carry.
	Files []IndexFile
}

// ParseRelease reads a Release file (the signed text of an InRelease).
func ParseRelease(b []byte) (*Release, error) {
	if len(b) > MaxPointer {
		return nil, fmt.Errorf("%w: Release is larger than %d bytes", ErrTooLarge, MaxPointer)
	}
	rel := &Release{}
	field := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), maxEntry)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if field != "SHA256" {
				continue
			}
			f := strings.Fields(line)
			if len(f) != 3 || !isHex64(f[0]) {
				return nil, fmt.Errorf("%w: Release: SHA256 line %q is not HASH SIZE PATH", ErrInvalid, line)
			}
			size, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || size < 0 {
				return nil, fmt.Errorf("%w: Release: SHA256 line %q is not HASH SIZE PATH", ErrInvalid, line)
			}
			if err := CheckPath(f[2]); err != nil {
				return nil, fmt.Errorf("Release: %w", err)
			}
			rel.Files = append(rel.Files, IndexFile{Path: f[2], SHA256: f[0], Size: size})
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("%w: Release: line %q is not a field", ErrInvalid, line)
		}
		field, v = k, strings.TrimSpace(v)
		switch k {
		case "Suite":
			rel.Suite = v
		case "Codename":
			rel.Codename = v
		case "Components":
			rel.Components = strings.Fields(v)
		case "Architectures":
			rel.Architectures = strings.Fields(v)
		case "Acquire-By-Hash":
			rel.AcquireByHash = strings.EqualFold(v, "yes")
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: Release: %v", ErrInvalid, err)
	}
	if len(rel.Files) == 0 {
		return nil, fmt.Errorf("%w: Release lists no files with a SHA256", ErrInvalid)
	}
	return rel, nil
}

// ScanPackages streams a (decompressed) APT Packages index and calls fn
// for each stanza with its Filename, SHA256 and Size. A stanza without
// them, or with a Filename outside the repository, is an error.
func ScanPackages(r io.Reader, fn func(Entry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEntry)
	e := Entry{Size: -1}
	fields := 0
	flush := func() error {
		if fields == 0 {
			return nil
		}
		defer func() { e, fields = Entry{Size: -1}, 0 }()
		if e.Name == "" {
			return fmt.Errorf("%w: Packages: a stanza has no Package field", ErrInvalid)
		}
		if err := CheckPath(e.Path); err != nil {
			return fmt.Errorf("the Packages index: %s: Filename: %w", e.Name, err)
		}
		if !isHex64(e.SHA256) || e.Size < 0 {
			return fmt.Errorf("%w: Packages: %s has no SHA256 or Size", ErrInvalid, e.Path)
		}
		return fn(e)
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		fields++
		if line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return fmt.Errorf("%w: Packages: line %q is not a field", ErrInvalid, truncate(line))
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			e.Name = v
		case "Version":
			e.Version = v
		case "Architecture":
			e.Arch = v
		case "Filename":
			e.Path = v
		case "SHA256":
			e.SHA256 = v
		case "Size":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: Packages: Size %q", ErrInvalid, truncate(v))
			}
			e.Size = n
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return fmt.Errorf("%w: Packages: a line is longer than %d bytes", ErrTooLarge, maxEntry)
		}
		return fmt.Errorf("read the Packages index: %w", err)
	}
	return flush()
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
