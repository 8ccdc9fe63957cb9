package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/packyard/packyard/internal/client"
)

// mirrorFlags are the repo create flags of mirror repositories.
type mirrorFlags struct {
	keyFiles, dists, comps, include, exclude []string
	unsignedUpstream                         bool
	dbName, interval, metalink, mirrorlist   string
	retain, concurrency                      int
	fromSnapshot                             string
}

func (m *mirrorFlags) register(c *cobra.Command) {
	f := c.Flags()
	f.StringSliceVar(&m.keyFiles, "upstream-key", nil, "mirror: file with the upstream's public key (armored or binary); its metadata must be signed by it (repeatable)")
	f.BoolVar(&m.unsignedUpstream, "upstream-unsigned", false, "mirror: accept upstream metadata without a signature (digests are still checked)")
	f.StringSliceVar(&m.dists, "distribution", nil, "mirror (deb): distribution to copy (repeatable)")
	f.StringSliceVar(&m.comps, "component", nil, "mirror (deb): component to copy (repeatable; default: all the Release file lists)")
	f.StringVar(&m.dbName, "db-name", "", "mirror (arch): the upstream repository's name (NAME.db; default: the mirror's name)")
	f.StringSliceVar(&m.include, "include", nil, "mirror: copy only packages whose name matches this pattern (repeatable; e.g. 'kernel*')")
	f.StringSliceVar(&m.exclude, "exclude", nil, "mirror: never copy packages whose name matches this pattern (repeatable)")
	f.StringVar(&m.interval, "sync-interval", "", "mirror: sync on this schedule (e.g. 6h; default: on demand only)")
	f.IntVar(&m.retain, "retain", 0, "mirror (union): keep only the newest N versions of each package (default: keep everything)")
	f.IntVar(&m.concurrency, "concurrency", 0, "mirror: parallel downloads (default 8)")
	f.StringVar(&m.metalink, "metalink", "", "mirror (rpm): metalink URL giving more upstreams")
	f.StringVar(&m.mirrorlist, "mirrorlist", "", "mirror (rpm): mirrorlist URL giving more upstreams")
	f.StringVar(&m.fromSnapshot, "from-snapshot", "", "hosted: seed the new repository with the packages of snapshot REPO@NAME")
}

// apply puts the mirror settings into a repository document.
func (m *mirrorFlags) apply(kind, mode string, keys bool, extra map[string]any) error {
	set := len(m.keyFiles) > 0 || m.unsignedUpstream || len(m.dists) > 0 || len(m.comps) > 0 || m.dbName != "" ||
		len(m.include) > 0 || len(m.exclude) > 0 || m.interval != "" || m.retain != 0 || m.concurrency != 0 || m.metalink != "" || m.mirrorlist != ""
	if kind != "mirror" {
		if set {
			return fmt.Errorf("--upstream-key, --distribution, --component, --db-name, --include, --exclude, --sync-interval, --retain, --concurrency, --metalink and --mirrorlist apply to --kind mirror")
		}
		return nil
	}
	if mode == "exact" && keys {
		return fmt.Errorf("a mirror in mode exact serves its upstream's signatures: --key and --unsigned apply to mode union only")
	}
	var armored []string
	for _, f := range m.keyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--upstream-key: %w", err)
		}
		armored = append(armored, string(b))
	}
	for k, v := range map[string]any{"upstream_keys": armored, "distributions": m.dists, "components": m.comps,
		"include": m.include, "exclude": m.exclude} {
		if l := v.([]string); len(l) > 0 {
			extra[k] = l
		}
	}
	for k, v := range map[string]string{"db_name": m.dbName, "sync_interval": m.interval, "metalink": m.metalink, "mirrorlist": m.mirrorlist} {
		if v != "" {
			extra[k] = v
		}
	}
	if m.unsignedUpstream {
		extra["upstream_unsigned"] = true
	}
	if m.retain != 0 {
		extra["retain"] = m.retain
	}
	if m.concurrency != 0 {
		extra["concurrency"] = m.concurrency
	}
	return nil
}

func newMirrorCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "mirror", Short: "Sync mirror repositories and show their syncs"}
	var noWait bool
	sync := &cobra.Command{
		Use:   "sync NAME",
		Short: "Sync a mirror now, showing progress, and print what the sync did",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := g.client()
			s, err := c.StartSync(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if noWait {
				return printSync(cmd.OutOrStdout(), g, s)
			}
			errOut := cmd.ErrOrStderr()
			start := time.Now()
			// The server answers as soon as the sync ends, or after a
			// second with its progress. A sync another node of a cluster
			// runs is not waited for there: ask every half second then.
			for s.Status == "running" {
				asked := time.Now()
				if s, err = c.WaitSync(cmd.Context(), args[0], s.ID, time.Second); err != nil {
					return err
				}
				if s.Status != "running" {
					break
				}
				if p := s.Progress; p != nil {
					fmt.Fprintln(errOut, progressLine(p, time.Since(start)))
				}
				if d := time.Since(asked); d < 500*time.Millisecond {
					select {
					case <-cmd.Context().Done():
						return cmd.Context().Err()
					case <-time.After(500*time.Millisecond - d):
					}
				}
			}
			if err := printSync(cmd.OutOrStdout(), g, s); err != nil {
				return err
			}
			if s.Status != "ok" {
				return fmt.Errorf("sync %d of %s failed: %s", s.ID, args[0], s.Error)
			}
			return nil
		},
	}
	sync.Flags().BoolVar(&noWait, "no-wait", false, "start the sync and return at once")
	var limit int
	list := &cobra.Command{
		Use:   "syncs NAME",
		Short: "List a mirror's syncs, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ss, err := g.client().ListSyncs(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if j, err := g.json(); err != nil || j {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), ss)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTARTED\tSTATUS\tGENERATION\tSUMMARY")
			for i := range ss {
				s := &ss[i]
				fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", s.ID, s.StartedAt.Local().Format(time.DateTime), s.Status, s.Generation, summary(s))
			}
			return tw.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "how many syncs to show")
	cmd.AddCommand(sync, list)
	return cmd
}

// syncStats is the part of a sync's stats the CLI prints.
type syncStats struct {
	Packages, Added, Present, Reused, Dropped, Removed, Retired, Conflicts, Failed int
	DownloadedBytes                                                                int64 `json:"downloaded_bytes"`
	Seconds                                                                        float64
	Failures                                                                       []string
}

func summary(s *client.Sync) string {
	var st syncStats
	if len(s.Stats) == 0 || json.Unmarshal(s.Stats, &st) != nil {
		return s.Error
	}
	out := fmt.Sprintf("%d packages upstream: %d added (%d from the store), %d present, %d dropped upstream", st.Packages, st.Added, st.Reused, st.Present, st.Dropped)
	if st.Removed > 0 {
		out += fmt.Sprintf(" (%d removed)", st.Removed)
	}
	if st.Retired > 0 {
		out += fmt.Sprintf(", %d retired", st.Retired)
	}
	if st.Conflicts > 0 {
		out += fmt.Sprintf(", %d changed upstream (kept)", st.Conflicts)
	}
	if st.Failed > 0 {
		out += fmt.Sprintf(", %d failed", st.Failed)
	}
	return out + fmt.Sprintf("; %s downloaded in %.1fs", humanBytes(st.DownloadedBytes), st.Seconds)
}

func printSync(w io.Writer, g *globals, s *client.Sync) error {
	if j, err := g.json(); err != nil || j {
		if err != nil {
			return err
		}
		return printJSON(w, s)
	}
	fmt.Fprintf(w, "sync %d of %s: %s", s.ID, s.Repo, s.Status)
	if s.Generation > 0 {
		fmt.Fprintf(w, ", generation %d", s.Generation)
	}
	fmt.Fprintln(w)
	if sum := summary(s); sum != "" && sum != s.Error {
		fmt.Fprintln(w, "  "+sum)
	}
	if s.Error != "" {
		fmt.Fprintln(w, "  error: "+s.Error)
	}
	var st syncStats
	if json.Unmarshal(s.Stats, &st) == nil {
		for _, f := range st.Failures {
			fmt.Fprintln(w, "  failed: "+f)
		}
	}
	return nil
}

// progressLine renders a running sync's progress: packages and bytes
// done, the rate, and an estimate of the time left once the upstream's
// package list is known.
func progressLine(p *client.SyncProgress, elapsed time.Duration) string {
	rate := float64(p.Bytes) / max(elapsed.Seconds(), 0.001)
	total := fmt.Sprint(p.Packages)
	if !p.Listed && p.Phase != "packages" {
		total += "+"
	}
	line := fmt.Sprintf("%-10s %d/%s packages, %s, %s/s", p.Phase, p.Done, total, humanBytes(p.Bytes), humanBytes(int64(rate)))
	if p.Done > 0 && p.Packages > p.Done {
		left := time.Duration(float64(elapsed) * float64(p.Packages-p.Done) / float64(p.Done))
		line += ", ETA " + left.Round(time.Second).String()
	}
	return strings.TrimSpace(line)
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "snapshot", Short: "Freeze, list and delete named snapshots of repositories"}
	create := &cobra.Command{
		Use:   "create REPO NAME",
		Short: "Freeze a repository's current generation; served read-only at /REPO/@NAME/",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sn, err := g.client().CreateSnapshot(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if j, err := g.json(); err != nil || j {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), sn)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "snapshot %q of %s (generation %d): %s\n", sn.Name, sn.Repo, sn.Generation, sn.URL)
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list REPO",
		Short: "List a repository's snapshots",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sns, err := g.client().ListSnapshots(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if j, err := g.json(); err != nil || j {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), sns)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tGENERATION\tCREATED\tURL")
			for _, sn := range sns {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", sn.Name, sn.Generation, sn.CreatedAt.Local().Format(time.DateTime), sn.URL)
			}
			return tw.Flush()
		},
	}
	del := &cobra.Command{
		Use:   "delete REPO NAME",
		Short: "Delete a snapshot",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().DeleteSnapshot(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted snapshot %q of %s\n", args[1], args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}
