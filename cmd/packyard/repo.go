package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newRepoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Create, list, show and delete repositories"}
	var format, kind, watchDir, defDist, defComp string
	var keys, arches []string
	var unsigned, keepImported bool
	var upstreams, peers []string
	var maxAge, upstreamTimeout, mode, maxCache string
	var mf mirrorFlags
	create := &cobra.Command{
		Use:   "create NAME --format rpm|deb|arch",
		Short: "Create a repository",
		Long: `Create a repository. It is signed with the server's default key unless
--key names others (two during a rotation) or --unsigned is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			extra := map[string]any{}
			switch {
			case unsigned && len(keys) > 0:
				return fmt.Errorf("--unsigned and --key exclude each other")
			case unsigned:
				extra["keys"] = []string{}
			case len(keys) > 0:
				extra["keys"] = keys
			}
			if len(arches) > 0 {
				extra["architectures"] = arches
			}
			if watchDir != "" {
				extra["watch_dir"] = watchDir
			}
			if keepImported {
				extra["watch_keep_imported"] = true
			}
			if defDist != "" {
				extra["default_distribution"] = defDist
			}
			if defComp != "" {
				extra["default_component"] = defComp
			}
			for key, v := range map[string]string{"max_age": maxAge, "upstream_timeout": upstreamTimeout, "mode": mode, "max_cache_size": maxCache} {
				if v != "" {
					extra[key] = v
				}
			}
			if len(upstreams) > 0 {
				extra["upstreams"] = upstreams
			}
			if len(peers) > 0 {
				extra["peers"] = peers
			}
			if err := mf.apply(kind, mode, unsigned || len(keys) > 0, extra); err != nil {
				return err
			}
			if kind == "proxy" && mode != "union" && (unsigned || len(keys) > 0) {
				return fmt.Errorf("a passthrough proxy repository serves its upstream's signatures: --key and --unsigned apply to --mode union only")
			}
			if mf.fromSnapshot != "" {
				extra["from_snapshot"] = mf.fromSnapshot
			}
			r, err := g.client().CreateRepo(cmd.Context(), args[0], format, kind, extra)
			if err != nil {
				return err
			}
			if j, err := g.json(); err != nil || j {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s repository %q: %s\n", r.Format, r.Name, r.URL)
			return nil
		},
	}
	create.Flags().StringVar(&format, "format", "", "repository format: rpm, deb or arch")
	create.Flags().StringSliceVar(&keys, "key", nil, "signing key (repeat for two during a rotation; default: the server's default key)")
	create.Flags().BoolVar(&unsigned, "unsigned", false, "publish unsigned metadata")
	create.Flags().StringSliceVar(&arches, "architectures", nil, "deb: architectures indexed even without packages of their own")
	create.Flags().StringVar(&kind, "kind", "hosted", "repository kind: hosted, mirror (a verified copy of --upstream URLs) or proxy (a pull-through cache of --upstream URLs)")
	create.Flags().StringSliceVar(&upstreams, "upstream", nil, "mirror, proxy: upstream repository URL (repeat for failover, tried in order)")
	create.Flags().StringSliceVar(&peers, "peer", nil, "proxy: another packyard node (base URL) asked first for files it has cached (repeatable)")
	create.Flags().StringVar(&maxAge, "max-age", "", "proxy: how long repomd.xml, InRelease or NAME.db is served before it is revalidated upstream (default 5m)")
	create.Flags().StringVar(&upstreamTimeout, "upstream-timeout", "", "proxy: how long an upstream may take to answer or stall in a download before the next is tried (default 30s)")
	create.Flags().StringVar(&maxCache, "max-cache-size", "", "proxy: cap on the cached packages' size (e.g. 50G); the least recently used are evicted past it (default: no cap)")
	create.Flags().StringVar(&mode, "mode", "", "proxy: passthrough (default): upstream metadata is served verbatim; union: merged with every package ever cached and signed with --key or the default key. mirror: union (default): every package ever copied, signed with --key or the default key; exact: upstream's signed metadata byte for byte")
	mf.register(create)
	create.Flags().StringVar(&watchDir, "watch-dir", "", "drop folder on the server: package files copied into it are imported (absolute path)")
	create.Flags().BoolVar(&keepImported, "watch-keep-imported", false, "move imported files to <watch-dir>/imported/ instead of deleting them")
	create.Flags().StringVar(&defDist, "default-distribution", "", "deb: distribution of packages dropped directly into the watch directory")
	create.Flags().StringVar(&defComp, "default-component", "", "deb: component of packages dropped without a <distribution>/<component>/ folder (default main)")
	_ = create.MarkFlagRequired("format")
	_ = create.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"rpm", "deb", "arch"}, cobra.ShellCompDirectiveNoFileComp))
	_ = create.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"hosted", "mirror", "proxy"}, cobra.ShellCompDirectiveNoFileComp))

	list := &cobra.Command{
		Use:   "list",
		Short: "List repositories",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := g.json()
			if err != nil {
				return err
			}
			repos, err := g.client().ListRepos(cmd.Context())
			if err != nil {
				return err
			}
			if j {
				return printJSON(cmd.OutOrStdout(), repos)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFORMAT\tKIND\tGENERATION\tURL")
			for _, r := range repos {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.Name, r.Format, r.Kind, r.CurrentGeneration, r.URL)
			}
			return tw.Flush()
		},
	}
	show := &cobra.Command{
		Use:               "show NAME",
		Short:             "Show a repository and its packages",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRepos(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			j, err := g.json()
			if err != nil {
				return err
			}
			c := g.client()
			r, err := c.GetRepo(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			pkgs, err := c.ListPackages(cmd.Context(), args[0], "")
			if err != nil {
				return err
			}
			if j {
				return printJSON(cmd.OutOrStdout(), map[string]any{"repo": r, "packages": pkgs})
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "name:        %s\nformat:      %s\nkind:        %s\ngeneration:  %d\nurl:         %s\npackages:    %d\n", r.Name, r.Format, r.Kind, r.CurrentGeneration, r.URL, len(pkgs))
			var watchCfg struct {
				Dir  string `json:"watch_dir"`
				Keep bool   `json:"watch_keep_imported"`
			}
			if json.Unmarshal(r.Config, &watchCfg) == nil && watchCfg.Dir != "" {
				keep := ""
				if watchCfg.Keep {
					keep = " (imported files kept in imported/)"
				}
				fmt.Fprintf(out, "drop folder: %s%s\n", watchCfg.Dir, keep)
			}
			if len(r.Signing) == 0 {
				fmt.Fprintln(out, "signed by:   nobody (unsigned)")
			}
			for _, k := range r.Signing {
				fmt.Fprintf(out, "signed by:   %s %s\n", k.Name, k.Fingerprint)
			}
			if len(pkgs) > 0 {
				fmt.Fprintln(out)
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tPATH\tSIZE\tUPLOADED")
				for _, p := range pkgs {
					fmt.Fprintf(tw, "%d\t%s\t%d\t%s\n", p.ID, p.Path, p.Size, p.UploadedAt.Format("2006-01-02 15:04"))
				}
				return tw.Flush()
			}
			return nil
		},
	}
	var yes bool
	del := &cobra.Command{
		Use:               "delete NAME --yes",
		Short:             "Delete a repository and its packages",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeRepos(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return fmt.Errorf("deleting %q removes every package in it: repeat with --yes", args[0])
			}
			if err := g.client().DeleteRepo(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted repository %q\n", args[0])
			return nil
		},
	}
	del.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")

	var signUnsigned bool
	signCmd := &cobra.Command{
		Use:   "sign NAME KEY [KEY2]",
		Short: "Choose the key(s) that sign a repository and republish it",
		Long: `Choose the key that signs a repository's metadata, or two keys during a
rotation: both signatures then appear in repomd.xml.asc, Release.gpg and
InRelease, so clients trusting either key accept the repository. A new
generation is published before the command returns. Rotate in three steps:
'repo sign R old new', update the clients' keys, 'repo sign R new'.`,
		Args:              cobra.RangeArgs(1, 3),
		ValidArgsFunction: completeRepos(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			if signUnsigned != (len(args) == 1) {
				return fmt.Errorf("name one or two keys, or give --unsigned alone")
			}
			r, err := g.client().UpdateRepo(cmd.Context(), args[0], map[string]any{"keys": append([]string{}, args[1:]...)})
			if err != nil {
				return err
			}
			if j, err := g.json(); err != nil || j {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), r)
			}
			if len(r.Signing) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s is now unsigned (generation %d)\n", r.Name, r.CurrentGeneration)
			}
			for _, k := range r.Signing {
				fmt.Fprintf(cmd.OutOrStdout(), "%s signed by %s %s (generation %d)\n", r.Name, k.Name, k.Fingerprint, r.CurrentGeneration)
			}
			return nil
		},
	}
	signCmd.Flags().BoolVar(&signUnsigned, "unsigned", false, "publish unsigned metadata from now on")
	cmd.AddCommand(create, list, show, del, signCmd, newRepoWatchCmd(g))
	return cmd
}

// completeRepos completes repository names from the server.
func completeRepos(g *globals) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		repos, err := g.client().ListRepos(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := make([]string, 0, len(repos))
		for _, r := range repos {
			names = append(names, r.Name)
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// newRepoWatchCmd sets or removes a repository's drop folder.
func newRepoWatchCmd(g *globals) *cobra.Command {
	var off, keep bool
	cmd := &cobra.Command{
		Use:   "watch NAME DIR | watch NAME --off",
		Short: "Import the package files copied into a directory on the server",
		Long: `Make DIR, a directory on the server, the repository's drop folder: a package
file copied or moved into it is imported within seconds of its last write,
then deleted (or moved to DIR/imported/ with --keep-imported). A file the
repository refuses goes to DIR/rejected/ with FILE.error beside it. The
server creates DIR if it is missing. APT packages go in
DIR/<distribution>/<component>/. --off stops watching (files stay).
See docs/dropfolder.md.`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: completeRepos(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			var fields map[string]any
			switch {
			case off && len(args) == 1:
				fields = map[string]any{"watch_dir": nil, "watch_keep_imported": nil}
			case !off && len(args) == 2:
				fields = map[string]any{"watch_dir": args[1], "watch_keep_imported": keep}
			default:
				return fmt.Errorf("give a directory, or --off alone")
			}
			r, err := g.client().UpdateRepo(cmd.Context(), args[0], fields)
			if err != nil {
				return err
			}
			if j, err := g.json(); err != nil || j {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), r)
			}
			if off {
				fmt.Fprintf(cmd.OutOrStdout(), "%s no longer watches a drop folder\n", r.Name)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s imports the package files copied into %s\n", r.Name, args[1])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&off, "off", false, "stop watching the drop folder")
	cmd.Flags().BoolVar(&keep, "keep-imported", false, "move imported files to DIR/imported/ instead of deleting them")
	return cmd
}
