package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newRepoCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Create, list, show and delete repositories"}
	var format, kind string
	create := &cobra.Command{
		Use:   "create NAME --format rpm",
		Short: "Create a repository",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.client().CreateRepo(cmd.Context(), args[0], format, kind, nil)
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
	create.Flags().StringVar(&format, "format", "", "repository format: rpm")
	create.Flags().StringVar(&kind, "kind", "hosted", "repository kind: hosted")
	_ = create.MarkFlagRequired("format")
	_ = create.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"rpm"}, cobra.ShellCompDirectiveNoFileComp))
	_ = create.RegisterFlagCompletionFunc("kind", cobra.FixedCompletions([]string{"hosted"}, cobra.ShellCompDirectiveNoFileComp))

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
	cmd.AddCommand(create, list, show, del)
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
