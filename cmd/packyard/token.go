package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens"}
	var scope string
	var repos []string
	create := &cobra.Command{
		Use:   "create NAME --scope read|edge|write|admin [--repo R]...",
		Short: "Create a token; its secret is printed once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := g.client().CreateToken(cmd.Context(), args[0], scope, repos)
			if err != nil {
				return err
			}
			if j, err := g.json(); err != nil || j {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %q (scope %s) created; the secret above is not shown again\n", t.Name, t.Scope)
			return nil
		},
	}
	create.Flags().StringVar(&scope, "scope", "write", "scope: read, edge (an edge agent), write or admin")
	create.Flags().StringSliceVar(&repos, "repo", nil, "limit the token to these repositories (repeatable)")
	_ = create.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"read", "write", "admin"}, cobra.ShellCompDirectiveNoFileComp))
	_ = create.RegisterFlagCompletionFunc("repo", completeRepos(g))

	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := g.json()
			if err != nil {
				return err
			}
			toks, err := g.client().ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			if j {
				return printJSON(cmd.OutOrStdout(), toks)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPE\tREPOS\tCREATED\tLAST USED")
			for _, t := range toks {
				used := "never"
				if t.LastUsed != nil {
					used = t.LastUsed.Format("2006-01-02 15:04")
				}
				rs := strings.Join(t.Repos, ",")
				if rs == "" {
					rs = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, t.Scope, rs, t.CreatedAt.Format("2006-01-02 15:04"), used)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().DeleteToken(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %q\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
