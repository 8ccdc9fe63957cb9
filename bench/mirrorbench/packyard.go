package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/server"
)

// packyard's side: a fresh `packyard serve` (embedded defaults: SQLite +
// fs) for each initial sync, a mirror repository made with the CLI, and
// `packyard mirror sync NAME`, which returns once the sync is done. The
// work happens in the server, so the peak memory is the server's VmHWM
// after the sync; before the incremental sync it is reset to the current
// RSS (/proc/PID/clear_refs), so that it is the incremental sync's own.

// checkPackyard fails unless bin has the commands and flags the benchmark
// drives: `packyard mirror sync` and `packyard repo create --kind mirror
// --upstream-key`.
func checkPackyard(bin string) error {
	missing := func(what string, out []byte, err error) error {
		return fmt.Errorf("%s has no %s: packyard's mirror repositories (issue 7) are not in this build; "+
			"measure the anchors alone with -engines anchors (%v)\n%s", bin, what, err, bytes.TrimSpace(out))
	}
	out, err := exec.Command(bin, "mirror", "sync", "--help").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("mirror sync")) {
		return missing("`mirror sync` command", out, err)
	}
	out, err = exec.Command(bin, "repo", "create", "--help").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--upstream-key")) || !bytes.Contains(out, []byte("mirror")) {
		return missing("`repo create --kind mirror --upstream-key`", out, err)
	}
	return nil
}

type packyardSyncer struct {
	cfg    *config
	srv    *server.Server
	repo   string
	format string
	log    string
}

func newPackyardSyncer(ctx context.Context, cfg *config, up *upstreamStates, format, url, dir string) (syncer, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	s, err := server.Start(cfg.bin, data, filepath.Join(dir, "packyard.log"))
	if err != nil {
		return nil, err
	}
	p := &packyardSyncer{cfg: cfg, srv: s, repo: "up-" + format, format: format, log: filepath.Join(dir, "cli.log")}
	args := []string{"repo", "create", p.repo, "--format", format, "--kind", "mirror", "--upstream", url, "--upstream-key", up.keyArmored}
	if format == "deb" {
		args = append(args, "--distribution", dist, "--component", component, "--architectures", debArch)
	}
	if _, err := p.cli(ctx, nil, args...); err != nil {
		s.Stop()
		return nil, err
	}
	return p, nil
}

// cli runs the packyard CLI against the server, measured, its standard
// output also to stdout if not nil.
func (p *packyardSyncer) cli(ctx context.Context, stdout io.Writer, args ...string) (proc.Usage, error) {
	return runTool(ctx, p.log, []string{"PACKYARD_SERVER=" + p.srv.Base, "PACKYARD_TOKEN=" + p.srv.Token}, stdout, p.cfg.bin, args...)
}

// serverDuration is finished_at − started_at of the sync record that
// `packyard -o json mirror sync` prints, 0 if it has no such record.
// It also returns the record's phase times (stats.phase_seconds).
func serverDuration(out []byte) (time.Duration, map[string]float64) {
	var rec struct {
		Status     string     `json:"status"`
		StartedAt  time.Time  `json:"started_at"`
		FinishedAt *time.Time `json:"finished_at"`
		Stats      struct {
			PhaseSeconds map[string]float64 `json:"phase_seconds"`
		} `json:"stats"`
	}
	if json.Unmarshal(out, &rec) != nil || rec.FinishedAt == nil || rec.StartedAt.IsZero() {
		return 0, nil
	}
	return rec.FinishedAt.Sub(rec.StartedAt), rec.Stats.PhaseSeconds
}

func (p *packyardSyncer) sync(ctx context.Context, incremental bool, want []corpus.File) (measurement, error) {
	var m measurement
	pid := p.srv.PID()
	if incremental {
		// "5" resets VmHWM to VmRSS (proc(5), Linux 4.0).
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			return m, fmt.Errorf("reset the server's VmHWM: %w", err)
		}
	}
	before, err := proc.ReadMem(pid)
	if err != nil {
		return m, err
	}
	cpu0, _ := proc.CPUTime(pid)
	start := time.Now()
	var out bytes.Buffer
	u, err := p.cli(ctx, &out, "-o", "json", "mirror", "sync", p.repo)
	if aerr := p.srv.Alive(); aerr != nil {
		return m, aerr
	}
	if err != nil {
		return m, err
	}
	m.server, m.phases = serverDuration(out.Bytes())
	m.wall = u.Wall
	if p.cfg.verify {
		// The sync is done for a client once the repository serves the
		// new packages: the time runs until the published index lists
		// them all, in case the command returns before.
		seen, first, err := p.waitPublished(ctx, len(want), 2*time.Minute)
		if err != nil {
			return m, err
		}
		// Already published when the command returned: its time stands.
		// Otherwise the sync ended by the poll that found it published.
		if d := seen.Sub(start); !first && d > u.Wall {
			m.wall, m.lag = d, d-u.Wall
		}
	}
	after, err := proc.ReadMem(pid)
	if err != nil {
		return m, err
	}
	cpu1, _ := proc.CPUTime(pid)
	m.rss, m.baseline, m.cliRSS, m.cpu = after.HWM, before.HWM, u.MaxRSS, cpu1-cpu0+u.CPU
	return m, nil
}

// waitPublished polls the repository's pointer file (repomd.xml,
// InRelease) every 20 ms and, each time it changed, the index it names,
// until the index lists n packages. It returns when the poll that found
// them started, and whether that was the first poll.
func (p *packyardSyncer) waitPublished(ctx context.Context, n int, limit time.Duration) (seen time.Time, first bool, err error) {
	c := server.NewClient(p.srv, p.repo, 1)
	pointer := "repodata/repomd.xml"
	if p.format == "deb" {
		pointer = "dists/" + dist + "/InRelease"
	}
	deadline := time.Now().Add(limit)
	var last []byte
	got := -1
	for poll := 0; ; poll++ {
		t := time.Now()
		if b, err := c.Fetch(pointer); err == nil && !bytes.Equal(b, last) {
			last = b
			if locs, err := p.locations(c); err == nil {
				got = len(locs)
				if got == n {
					return t, poll == 0, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return t, false, fmt.Errorf("`mirror sync` returned, but %s later the published index lists %d packages, not %d", limit, got, n)
		}
		select {
		case <-ctx.Done():
			return t, false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *packyardSyncer) locations(c *server.Client) (map[string]string, error) {
	if p.format == "rpm" {
		return rpmLocations(c)
	}
	return debLocations(c)
}

func (p *packyardSyncer) pids() []int { return []int{p.srv.PID()} }
func (p *packyardSyncer) close()      { p.srv.Stop() }

// verify reads the mirror as a client would: the index that the
// repository publishes must list exactly want's packages, and the last
// ten package files must be the upstream's bytes.
func (p *packyardSyncer) verify(ctx context.Context, want []corpus.File) error {
	c := server.NewClient(p.srv, p.repo, 2)
	locs, err := p.locations(c) // file name → path in the repository
	if err != nil {
		return err
	}
	if len(locs) != len(want) {
		return fmt.Errorf("the published index lists %d packages, want %d", len(locs), len(want))
	}
	for i, f := range want {
		rel, ok := locs[f.Name]
		if !ok {
			return fmt.Errorf("the published index does not list %s", f.Name)
		}
		if i < len(want)-10 {
			continue
		}
		b, err := c.Fetch(rel)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != f.SHA256 {
			return fmt.Errorf("%s: the mirror's bytes differ from the upstream's", rel)
		}
	}
	return nil
}

// rpmLocations reads repodata/repomd.xml and the primary index it names.
func rpmLocations(c *server.Client) (map[string]string, error) {
	b, err := c.Fetch("repodata/repomd.xml")
	if err != nil {
		return nil, err
	}
	var repomd struct {
		Data []struct {
			Type     string `xml:"type,attr"`
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(b, &repomd); err != nil {
		return nil, fmt.Errorf("repomd.xml: %w", err)
	}
	href := ""
	for _, d := range repomd.Data {
		if d.Type == "primary" {
			href = d.Location.Href
		}
	}
	if href == "" {
		return nil, fmt.Errorf("repomd.xml names no primary index")
	}
	raw, err := c.Fetch(href)
	if err != nil {
		return nil, err
	}
	r, err := decompress(href, raw)
	if err != nil {
		return nil, err
	}
	locs := map[string]string{}
	dec := xml.NewDecoder(r)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", href, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "location" {
			for _, a := range se.Attr {
				if a.Name.Local == "href" {
					locs[filepath.Base(a.Value)] = a.Value
				}
			}
		}
	}
	return locs, nil
}

// debLocations reads dists/stable/InRelease and the Packages index of the
// component and architecture (the first of Packages.xz, .gz or plain the
// repository serves).
func debLocations(c *server.Client) (map[string]string, error) {
	if _, err := c.Fetch("dists/" + dist + "/InRelease"); err != nil {
		return nil, err
	}
	base := "dists/" + dist + "/" + component + "/binary-" + debArch + "/Packages"
	var raw []byte
	var name string
	var err error
	for _, ext := range []string{".xz", ".gz", ""} {
		if raw, err = c.Fetch(base + ext); err == nil {
			name = base + ext
			break
		}
	}
	if err != nil {
		return nil, err
	}
	r, err := decompress(name, raw)
	if err != nil {
		return nil, err
	}
	locs := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Filename: "); ok {
			locs[filepath.Base(v)] = v
		}
	}
	return locs, sc.Err()
}

// decompress reads a metadata file by its name's extension.
func decompress(name string, b []byte) (io.Reader, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		return gzip.NewReader(bytes.NewReader(b))
	case strings.HasSuffix(name, ".xz"):
		return xz.NewReader(bytes.NewReader(b))
	case strings.HasSuffix(name, ".zst"):
		d, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	}
	return bytes.NewReader(b), nil
}
