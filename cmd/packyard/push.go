package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/packyard/packyard/internal/client"
)

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

type pushOutcome struct {
	file string
	res  *client.UploadResult
	err  error
}

func newPushCmd(g *globals) *cobra.Command {
	var dist, comp string
	var jobs int
	var noWait bool
	cmd := &cobra.Command{
		Use:   "push REPO FILE...",
		Short: "Upload package files with progress, then print a summary",
		Long: "Upload package files to a hosted repository. Each file shows a progress bar; a summary follows.\n" +
			"The exit code is non-zero if any file failed. By default every upload returns once the package is installable.",
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: completeRepos(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			repoName, files := args[0], withoutSignatures(args[1:])
			c := g.client()
			params := map[string]string{}
			if dist != "" {
				params["distribution"] = dist
			}
			if comp != "" {
				params["component"] = comp
			}
			// Progress bars only on a terminal, and only the one the
			// command writes to.
			errOut := cmd.ErrOrStderr()
			ef, isFile := errOut.(*os.File)
			tty := isFile && isTerminal(ef)
			var p *mpb.Progress
			if tty {
				p = mpb.NewWithContext(cmd.Context(), mpb.WithOutput(errOut), mpb.WithWidth(40))
			}
			if jobs < 1 {
				jobs = 1
			}
			sem := make(chan struct{}, jobs)
			outcomes := make([]pushOutcome, len(files))
			var wg sync.WaitGroup
			var printMu sync.Mutex // uploads finish concurrently; lines must not interleave
			start := time.Now()
			for i, f := range files {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem <- struct{}{}
					defer func() { <-sem }()
					outcomes[i] = pushOne(cmd, c, p, repoName, f, params, !noWait)
					if !tty {
						printMu.Lock()
						printOutcome(errOut, outcomes[i])
						printMu.Unlock()
					}
				}()
			}
			wg.Wait()
			if p != nil {
				p.Wait()
				for _, o := range outcomes {
					printOutcome(errOut, o)
				}
			}
			return summarize(cmd.OutOrStdout(), outcomes, time.Since(start))
		},
	}
	cmd.Flags().StringVar(&dist, "distribution", "", "APT distribution (deb repositories)")
	cmd.Flags().StringVar(&comp, "component", "", "APT component (deb repositories)")
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 4, "uploads at once")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once each file is stored, before it is published")
	return cmd
}

func pushOne(cmd *cobra.Command, c *client.Client, p *mpb.Progress, repoName, file string, params map[string]string, wait bool) pushOutcome {
	o := pushOutcome{file: file}
	f, err := os.Open(file)
	if err != nil {
		o.err = err
		return o
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		o.err = err
		return o
	}
	if !fi.Mode().IsRegular() {
		o.err = fmt.Errorf("%s is not a regular file", file)
		return o
	}
	if strings.Contains(filepath.Base(file), ".pkg.tar.") {
		// pacman: a detached signature beside the package goes with it.
		sig, err := readSignature(file + ".sig")
		if err != nil {
			o.err = err
			return o
		}
		if sig != "" {
			params = maps.Clone(params)
			params["signature"] = sig
		}
	}
	var body io.Reader = f
	var bar *mpb.Bar
	if p != nil {
		bar = p.AddBar(fi.Size(),
			mpb.PrependDecorators(decor.Name(filepath.Base(file), decor.WCSyncSpaceR)),
			mpb.AppendDecorators(decor.CountersKibiByte("% .1f / % .1f"), decor.Percentage(decor.WCSyncSpace)),
		)
		body = bar.ProxyReader(f)
	}
	o.res, o.err = c.Upload(cmd.Context(), repoName, filepath.Base(file), body, fi.Size(), params, wait)
	if bar != nil {
		if o.err != nil {
			bar.Abort(false)
		} else {
			bar.SetTotal(fi.Size(), true)
		}
	}
	return o
}

func printOutcome(w io.Writer, o pushOutcome) {
	switch {
	case o.err != nil:
		fmt.Fprintf(w, "FAILED   %s: %v\n", o.file, o.err)
	case o.res.Created:
		fmt.Fprintf(w, "uploaded %s -> %s (generation %d)\n", o.file, o.res.Path, o.res.Generation)
	default:
		fmt.Fprintf(w, "present  %s -> %s (identical file already in the repository)\n", o.file, o.res.Path)
	}
}

func summarize(w io.Writer, outcomes []pushOutcome, d time.Duration) error {
	var created, present, failed int
	var bytes int64
	for _, o := range outcomes {
		switch {
		case o.err != nil:
			failed++
		case o.res.Created:
			created++
			bytes += o.res.Size
		default:
			present++
		}
	}
	fmt.Fprintf(w, "%d uploaded (%d bytes), %d already present, %d failed in %s\n", created, bytes, present, failed, d.Round(time.Millisecond))
	if failed > 0 {
		return exitError{msg: fmt.Sprintf("%d of %d files failed", failed, len(outcomes))}
	}
	return nil
}

// readSignature returns the base64 of a package's .sig file, "" if there
// is none.
func readSignature(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10+1))
	if err != nil {
		return "", err
	}
	if len(b) > 64<<10 {
		return "", fmt.Errorf("%s is larger than 64 KiB: not a package signature", path)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// withoutSignatures drops pacman .sig files whose package is in the list:
// each goes with its package. Paths are compared cleaned, so that
// "./a.pkg.tar.zst" and "a.pkg.tar.zst.sig" pair up.
func withoutSignatures(files []string) []string {
	in := map[string]bool{}
	for _, f := range files {
		in[filepath.Clean(f)] = true
	}
	out := files[:0:0]
	for _, f := range files {
		if pkg, ok := strings.CutSuffix(filepath.Clean(f), ".sig"); ok && in[pkg] {
			continue
		}
		out = append(out, f)
	}
	return out
}
