package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/packyard/packyard/internal/client"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "key",
		Short: "Manage the server's signing keys",
		Long: `Signing keys live on the server (in its data directory, mode 0600, or
referenced by path in its configuration); private keys never leave it
through the API. A repository is signed by one key, or by two while a key is
rotated: see 'packyard repo sign'.`,
	}
	var uid, email, algo string
	var bits int
	generate := &cobra.Command{
		Use:   "generate NAME",
		Short: "Generate a signing key on the server",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("bits") && !cmd.Flags().Changed("algorithm") {
				algo = fmt.Sprintf("rsa%d", bits)
			}
			k, err := g.client().GenerateKey(cmd.Context(), args[0], uid, email, algo)
			if err != nil {
				return err
			}
			return printKey(g, cmd, k, "generated")
		},
	}
	generate.Flags().StringVar(&uid, "uid", "", "user ID name (default: the key name)")
	generate.Flags().StringVar(&email, "email", "", "user ID e-mail address")
	generate.Flags().StringVar(&algo, "algorithm", "rsa3072", "rsa3072, rsa4096 or ed25519 (fast to sign with; not verified by yum on RHEL/CentOS 7)")
	generate.Flags().IntVar(&bits, "bits", 3072, "RSA key size, 3072 or 4096 (the same as --algorithm rsaBITS)")

	var passFile string
	imp := &cobra.Command{
		Use:   "import NAME FILE",
		Short: "Import an ASCII-armored private key (gpg --export-secret-keys --armor)",
		Long: `Import an ASCII-armored private key. An encrypted key is decrypted with the
passphrase from --passphrase-file (first line) or the environment variable
PACKYARD_KEY_PASSPHRASE; the server stores it decrypted (mode 0600) so that it
signs without prompts.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			armored, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			pass := []byte(os.Getenv("PACKYARD_KEY_PASSPHRASE"))
			if passFile != "" {
				b, err := os.ReadFile(passFile)
				if err != nil {
					return err
				}
				line, _, _ := strings.Cut(string(b), "\n")
				pass = []byte(strings.TrimRight(line, "\r"))
			}
			k, err := g.client().ImportKey(cmd.Context(), args[0], armored, pass)
			if err != nil {
				return err
			}
			return printKey(g, cmd, k, "imported")
		},
	}
	imp.Flags().StringVar(&passFile, "passphrase-file", "", "file whose first line is the key's passphrase")

	list := &cobra.Command{
		Use:   "list",
		Short: "List signing keys with their fingerprints and repositories",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			j, err := g.json()
			if err != nil {
				return err
			}
			keys, err := g.client().ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			if j {
				return printJSON(cmd.OutOrStdout(), keys)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tFINGERPRINT\tALGORITHM\tCREATED\tREPOS")
			for _, k := range keys {
				name := k.Name
				if k.Default {
					name += " (default)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, k.Fingerprint, k.Algorithm, k.Created.Format("2006-01-02"), strings.Join(k.Repos, ","))
			}
			return tw.Flush()
		},
	}

	var binary bool
	export := &cobra.Command{
		Use:   "export NAME",
		Short: "Print a key's public part (armored, or binary with --binary for apt's signed-by)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := g.client().PublicKey(cmd.Context(), args[0], binary)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	export.Flags().BoolVar(&binary, "binary", false, "binary OpenPGP packets instead of ASCII armor")

	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a key that signs no repository",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().DeleteKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted key %q\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(generate, imp, list, export, del)
	return cmd
}

func printKey(g *globals, cmd *cobra.Command, k *client.Key, verb string) error {
	j, err := g.json()
	if err != nil {
		return err
	}
	if j {
		return printJSON(cmd.OutOrStdout(), k)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s key %q\nfingerprint: %s\nalgorithm:   %s\n", verb, k.Name, k.Fingerprint, k.Algorithm)
	return nil
}
