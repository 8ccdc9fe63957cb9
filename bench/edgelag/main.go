// Command edgelag measures edge replication (packyard agent): how long a
// fresh edge takes to copy a repository of N packages, next to `rsync -a`
// of the same tree over loopback (an rsync daemon) in the same run; the
// replication lag of single uploads (upload answered at the origin → the
// edge serves the new repomd.xml), p50/p95/p99; and the origin's CPU and
// memory while that many agents follow it. It prints a markdown report.
//
//	go run ./bench/corpus -n 20100 -out C
//	go run ./bench/edgelag -corpus C -packyard BIN [-n 20000] [-uploads 100] [-agents 20]
//
// rsync must be installed (Debian package rsync).
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/proc"
	"github.com/packyard/packyard/bench/internal/server"
	"github.com/packyard/packyard/bench/internal/stats"
)

// secsList formats samples as "1.2 s, 1.3 s".
func secsList(s stats.Samples) string {
	out := make([]string, len(s))
	for i, d := range s {
		out[i] = stats.Secs(d)
	}
	return strings.Join(out, ", ")
}

// missed counts the targets the run did not meet.
var missed int

type config struct {
	corpus, bin, work, out string
	n, uploads, agents     int
	// fresh is how many fresh edges (and as many rsync copies, each after
	// one) are timed.
	fresh int
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "edgelag:", err)
	os.Exit(1)
}

func main() {
	c := &config{}
	flag.StringVar(&c.corpus, "corpus", "", "corpus directory written by bench/corpus (required; at least n+2×uploads+1 packages)")
	flag.StringVar(&c.bin, "packyard", "", "packyard binary (required)")
	flag.StringVar(&c.work, "work", "", "scratch directory (default: a new temporary directory, removed afterwards)")
	flag.StringVar(&c.out, "out", "", "also write the markdown report to this file")
	flag.IntVar(&c.n, "n", 20000, "packages in the repository a fresh edge copies")
	flag.IntVar(&c.uploads, "uploads", 100, "single uploads whose replication lag is measured")
	flag.IntVar(&c.agents, "agents", 20, "agents following the origin while the lag is measured")
	flag.IntVar(&c.fresh, "fresh-samples", 3, "fresh edges timed, each followed by an rsync -a of the tree (the report gives the medians)")
	flag.Parse()
	if c.corpus == "" || c.bin == "" || c.agents < 1 || c.fresh < 1 {
		fatal(fmt.Errorf("-corpus and -packyard are required, -agents and -fresh-samples at least 1"))
	}
	if c.work == "" {
		d, err := os.MkdirTemp("", "edgelag-")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(d)
		c.work = d
	}
	report, err := run(c)
	if err != nil {
		fatal(err)
	}
	if missed > 0 {
		logf("%d target(s) missed (see the report)", missed)
	}
	fmt.Print(report)
	if c.out != "" {
		if err := os.WriteFile(c.out, []byte(report), 0o644); err != nil {
			fatal(err)
		}
	}
}

// loadCorpus returns the first n files of a bench/corpus directory.
func loadCorpus(dir string, n int) ([]corpus.File, error) {
	f, err := os.Open(filepath.Join(dir, "MANIFEST"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var files []corpus.File
	sc := bufio.NewScanner(f)
	for sc.Scan() && len(files) < n {
		p := filepath.Join(dir, "rpms", sc.Text())
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		files = append(files, corpus.File{Name: sc.Text(), Path: p, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(b))})
	}
	if len(files) < n {
		return nil, fmt.Errorf("corpus %s has %d packages, want %d", dir, len(files), n)
	}
	return files, sc.Err()
}

// agent is a running `packyard agent`.
type agent struct {
	cmd  *exec.Cmd
	root string
	url  string
	done chan error
}

func startAgent(c *config, origin, name, token string, i int) (*agent, error) {
	dir := filepath.Join(c.work, fmt.Sprintf("agent-%02d", i))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	a := &agent{root: filepath.Join(dir, "root"), done: make(chan error, 1)}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	a.url = "http://" + addr
	cfg := fmt.Sprintf("origin = %q\nname = %q\ntoken = %q\nrepos = [\"edge\"]\nroot_dir = %q\nstate_db = %q\nlisten = %q\nfull_sync_interval = 0\n",
		origin, name, token, a.root, filepath.Join(dir, "state.db"), addr)
	if err := os.WriteFile(filepath.Join(dir, "agent.toml"), []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	lf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return nil, err
	}
	a.cmd = exec.Command(c.bin, "agent", "--config", filepath.Join(dir, "agent.toml"), "--log-format", "json")
	a.cmd.Stdout, a.cmd.Stderr = lf, lf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := a.cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	go func() { a.done <- a.cmd.Wait(); lf.Close() }()
	return a, nil
}

func (a *agent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
}

// served returns the generation the agent serves of the repository "edge".
func (a *agent) served() int64 {
	resp, err := http.Get(a.url + "/healthz")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var st struct {
		Repos map[string]int64 `json:"repos"`
	}
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return 0
	}
	return st.Repos["edge"]
}

func (a *agent) waitGeneration(gen int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for a.served() < gen {
		select {
		case err := <-a.done:
			return fmt.Errorf("agent exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent at %s did not reach generation %d within %s", a.url, gen, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// nextPort walks ports below Linux's ephemeral range (32768–60999): a
// port taken from that range and handed to an agent may meanwhile become
// the local port of one of the many outgoing connections of the run.
var nextPort = 20000 + rand.IntN(8000)

func freePort() (string, error) {
	for range 4000 {
		nextPort++
		if nextPort >= 32000 {
			nextPort = 20000
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", nextPort))
		if err != nil {
			continue
		}
		addr := l.Addr().String()
		l.Close()
		return addr, nil
	}
	return "", errors.New("no free port below 32000")
}

func run(c *config) (string, error) {
	files, err := loadCorpus(c.corpus, c.n+2*c.uploads+1)
	if err != nil {
		return "", err
	}
	srv, err := server.Start(c.bin, filepath.Join(c.work, "origin"), filepath.Join(c.work, "origin.log"))
	if err != nil {
		return "", err
	}
	defer srv.Stop()
	cl := server.NewClient(srv, "edge", 16)
	ctx := context.Background()
	if _, err := cl.API.CreateRepo(ctx, "edge", "rpm", "hosted", nil); err != nil {
		return "", err
	}
	logf("preloading %d packages", c.n)
	if err := cl.Preload(files[:c.n], nil, 8, logf); err != nil {
		return "", err
	}
	// An upload that waits is published with everything stored before it.
	res, err := cl.Upload(ctx, files[c.n], nil, true)
	if err != nil {
		return "", err
	}
	gen := res.Generation

	var b strings.Builder
	fmt.Fprintf(&b, "Run: %s, N = %s packages, %d single uploads, %d agents.\n\n| measurement | result |\n| --- | --- |\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), stats.Thousands(c.n+1), c.uploads, c.agents)

	// Fresh edge.
	tokens := make([]string, c.agents)
	for i := range tokens {
		t, err := cl.API.CreateToken(ctx, fmt.Sprintf("edge-%02d", i), "edge", nil)
		if err != nil {
			return "", err
		}
		tokens[i] = t.Token
	}
	// Fresh edges, each followed by rsync of the tree it made, in turn:
	// both meet the same state of the machine (its disk's speed varies
	// from minute to minute). Every copy stays until the run ends: on a
	// journal-less ext4, such as the benchmark VM's, creating a file where
	// many were just deleted costs far more.
	var fresh, rsyncs, rsyncsSync stats.Samples
	var first *agent
	for i := range c.fresh {
		name, token, idx := "edge-00", tokens[0], 0
		if i > 0 {
			t, err := cl.API.CreateToken(ctx, fmt.Sprintf("fresh-%02d", i), "edge", nil)
			if err != nil {
				return "", err
			}
			name, token, idx = fmt.Sprintf("fresh-%02d", i), t.Token, 100+i
		}
		start := time.Now()
		a, err := startAgent(c, srv.Base, name, token, idx)
		if err != nil {
			return "", err
		}
		if err := a.waitGeneration(gen, time.Hour); err != nil {
			a.stop()
			return "", err
		}
		took := time.Since(start)
		if i == 0 {
			first = a
			defer first.stop()
		} else {
			a.stop()
		}
		rs, rsSync, err := rsyncLoopback(c, first.root, i)
		if err != nil {
			return "", err
		}
		logf("fresh edge %d/%d: %s; rsync -a %s (%s with sync -f)", i+1, c.fresh, took, rs, rsSync)
		fresh, rsyncs, rsyncsSync = append(fresh, took), append(rsyncs, rs), append(rsyncsSync, rsSync)
	}
	freshMed, rsMed := fresh.P50(), rsyncs.P50()
	fmt.Fprintf(&b, "| fresh edge copies the repository (agent start → serving the generation; median of %d: %s) | %s |\n", c.fresh, secsList(fresh), stats.Secs(freshMed))
	fmt.Fprintf(&b, "| `rsync -a rsync://127.0.0.1/…` of the same tree into an empty directory (median of %d: %s) | %s |\n", c.fresh, secsList(rsyncs), stats.Secs(rsMed))
	fmt.Fprintf(&b, "| the same rsync followed by `sync -f` (the agent makes its files durable before it serves them; rsync does not) | %s |\n", stats.Secs(rsyncsSync.P50()))
	fmt.Fprintf(&b, "| fresh edge ÷ rsync (medians) | %s |\n", stats.FmtRatio(stats.Ratio(freshMed, rsMed)))

	// Replication lag with one edge: in production every edge is its own
	// machine, so an edge's lag is what its own sync costs, not what
	// twenty of them cost when they share this machine's two cores.
	next := c.n + 1
	measureLag := func(n int) (stats.Samples, time.Duration, error) {
		t0 := time.Now()
		var lags stats.Samples
		for range n {
			r, err := cl.Upload(ctx, files[next], nil, true)
			next++
			if err != nil {
				return nil, 0, err
			}
			answered := time.Now()
			if err := first.waitGeneration(r.Generation, time.Minute); err != nil {
				return nil, 0, err
			}
			lags = append(lags, time.Since(answered))
		}
		return lags, time.Since(t0), nil
	}
	lags, _, err := measureLag(c.uploads)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "| replication lag with one edge, upload answered → edge serves the new repomd.xml, p50 / p95 / p99 / max (%d uploads) | %s / %s / %s / %s |\n",
		c.uploads, stats.MS(lags.P50()), stats.MS(lags.P95()), stats.MS(lags.Quantile(0.99)), stats.MS(lags.Max()))

	// More agents, all caught up before the origin's cost is measured.
	all := []*agent{first}
	for i := 1; i < c.agents; i++ {
		a, err := startAgent(c, srv.Base, fmt.Sprintf("edge-%02d", i), tokens[i], i)
		if err != nil {
			return "", err
		}
		defer a.stop()
		all = append(all, a)
	}
	cur := first.served()
	for _, a := range all {
		if err := a.waitGeneration(cur, time.Hour); err != nil {
			return "", err
		}
	}
	cpu0, err := proc.CPUTime(srv.PID())
	if err != nil {
		return "", err
	}
	crowd, elapsed, err := measureLag(c.uploads)
	if err != nil {
		return "", err
	}
	cpu1, err := proc.CPUTime(srv.PID())
	if err != nil {
		return "", err
	}
	mem, err := proc.ReadMem(srv.PID())
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, "| the same with all %d agents following, on this machine beside the origin, p50 / p95 / p99 / max (%d more uploads) | %s / %s / %s / %s |\n",
		c.agents, c.uploads, stats.MS(crowd.P50()), stats.MS(crowd.P95()), stats.MS(crowd.Quantile(0.99)), stats.MS(crowd.Max()))
	fmt.Fprintf(&b, "| origin CPU (user+sys) during those uploads with %d agents following | %s in %s (%.0f%% of one core) |\n",
		c.agents, stats.Secs(cpu1-cpu0), stats.Secs(elapsed), 100*(cpu1-cpu0).Seconds()/elapsed.Seconds())
	fmt.Fprintf(&b, "| origin VmRSS / VmHWM after them | %s / %s |\n", stats.MiB(mem.RSS), stats.MiB(mem.HWM))

	fmt.Fprintf(&b, "\n| target (issue 5) | measured | |\n| --- | --- | --- |\n")
	target := func(name, measured string, ok bool) {
		verdict := "**met**"
		if !ok {
			verdict = "**missed**"
			missed++
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, measured, verdict)
	}
	target("replication lag p50 ≤ 1 s (one edge)", stats.MS(lags.P50()), lags.P50() <= time.Second)
	target("replication lag p99 ≤ 2 s (one edge)", stats.MS(lags.Quantile(0.99)), lags.Quantile(0.99) <= 2*time.Second)
	ratio := stats.Ratio(freshMed, rsMed)
	target("fresh edge sync ≤ 1.5× rsync -a (medians)", fmt.Sprintf("%s vs %s = %s", stats.Secs(freshMed), stats.Secs(rsMed), stats.FmtRatio(ratio)), ratio <= 1.5)
	return b.String(), nil
}

// rsyncLoopback serves dir with an rsync daemon on a loopback port and
// times `rsync -a` of it into an empty directory, and that copy followed
// by `sync -f` of its filesystem.
func rsyncLoopback(c *config, dir string, i int) (time.Duration, time.Duration, error) {
	bin, err := exec.LookPath("rsync")
	if err != nil {
		return 0, 0, fmt.Errorf("rsync not found (Debian package rsync): %w", err)
	}
	addr, err := freePort()
	if err != nil {
		return 0, 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(c.work, "rsyncd.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("use chroot = no\nlog file = %s\npid file = %s\n[tree]\npath = %s\nread only = yes\n",
		filepath.Join(c.work, "rsyncd.log"), filepath.Join(c.work, "rsyncd.pid"), dir)), 0o644); err != nil {
		return 0, 0, err
	}
	d := exec.Command(bin, "--daemon", "--no-detach", "--address", "127.0.0.1", "--port", port, "--config", conf)
	d.Stdout, d.Stderr = io.Discard, io.Discard
	if err := d.Start(); err != nil {
		return 0, 0, err
	}
	defer func() { _ = d.Process.Kill(); _ = d.Wait() }()
	for i := 0; ; i++ {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			break
		}
		if i > 500 {
			return 0, 0, fmt.Errorf("rsync daemon did not listen on %s", addr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	dst := filepath.Join(c.work, fmt.Sprintf("rsync-copy-%d", i))
	start := time.Now()
	out, err := exec.Command(bin, "-a", "rsync://"+addr+"/tree/", dst+"/").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("rsync: %v: %s", err, out)
	}
	took := time.Since(start)
	if out, err := exec.Command("sync", "-f", dst).CombinedOutput(); err != nil {
		return 0, 0, fmt.Errorf("sync -f: %v: %s", err, out)
	}
	return took, time.Since(start), nil
}
