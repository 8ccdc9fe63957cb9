package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/packyard/packyard/internal/backend"
	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/config"
	"github.com/packyard/packyard/internal/maint"
	"github.com/packyard/packyard/internal/meta"
)

// storeFlags are the flags of the commands that work on the stores
// directly (verify, gc, migrate): the same settings as serve's.
type storeFlags struct {
	config string
}

func (sf *storeFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&sf.config, "config", "", "TOML configuration file, as serve's (env PACKYARD_CONFIG)")
	f.String("data", config.Default().Data, "data directory (env PACKYARD_DATA)")
	f.String("database", "", "metadata store: sqlite:PATH or postgres://… (env PACKYARD_DATABASE; default sqlite:DATA/packyard.db)")
	f.String("blobs", "", "blob store: file:PATH or s3://BUCKET/PREFIX?endpoint=URL (env PACKYARD_BLOBS; default file:DATA/blobs)")
}

// load reads the configuration as serve does: defaults, file, environment,
// flags.
func (sf *storeFlags) load(cmd *cobra.Command) (config.Server, error) {
	cfg := config.Default()
	file := sf.config
	if file == "" {
		file = os.Getenv("PACKYARD_CONFIG")
	}
	if file != "" {
		if err := config.LoadFile(&cfg, file); err != nil {
			return cfg, err
		}
	}
	if err := config.LoadEnv(&cfg, os.Getenv); err != nil {
		return cfg, err
	}
	return cfg, applyFlags(cmd.Flags(), &cfg)
}

// open opens the configured stores.
func (sf *storeFlags) open(cmd *cobra.Command) (meta.Store, blob.Store, error) {
	cfg, err := sf.load(cmd)
	if err != nil {
		return nil, nil, err
	}
	return openStores(cmd.Context(), cfg.MetaStore(), cfg.BlobStore())
}

func openStores(ctx context.Context, database, blobs string) (meta.Store, blob.Store, error) {
	m, err := backend.OpenMeta(ctx, database)
	if err != nil {
		return nil, nil, fmt.Errorf("open metadata %s: %w", backend.Redact(database), err)
	}
	b, err := backend.OpenBlobs(ctx, blobs, backend.BlobOptions{})
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("open blob store %s: %w", blobs, err)
	}
	return m, b, nil
}

func cliLogger(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func newVerifyCmd(g *globals) *cobra.Command {
	var sf storeFlags
	var skipRehash bool
	var peer, peerToken string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every blob and check that every generation and package names only stored, intact blobs",
		Long: `Re-hash every blob of the blob store, and check that every retained generation
and every package names only blobs that are stored with the recorded size.
Problems are listed; the exit status is 1 if any is left. With --repair-from,
corrupt and missing blobs are fetched from a peer packyard by digest (and
checked) and stored; what cannot be fetched is reported as unrepairable.

It opens the stores directly (the same --config/--data/--database/--blobs as
serve) and may run while servers use them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, b, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			defer b.Close()
			opts := maint.VerifyOptions{SkipRehash: skipRehash, Log: cliLogger(cmd)}
			if peer != "" {
				opts.Repair = peerFetcher(peer, peerToken)
			}
			rep, err := maint.Verify(cmd.Context(), m, b, opts)
			if err != nil {
				return err
			}
			asJSON, err := g.json()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := printJSON(out, rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "checked %d blobs (%d bytes hashed), %d generations, %d packages\n",
					rep.BlobsChecked, rep.BytesHashed, rep.GenerationsChecked, rep.PackagesChecked)
				for _, p := range rep.Problems {
					state := "NOT REPAIRED"
					switch {
					case p.Repaired:
						state = "repaired"
					case p.Unrepairable != "":
						state = "unrepairable: " + p.Unrepairable
					case opts.Repair == nil:
						state = "not repaired (no --repair-from)"
					}
					fmt.Fprintf(out, "%s blob %s: %s\n", p.Kind, p.Digest, state)
					for _, w := range p.Where {
						fmt.Fprintf(out, "    named by %s\n", w)
					}
				}
				if len(rep.Problems) == 0 {
					fmt.Fprintln(out, "no problems found")
				}
			}
			if !rep.OK() {
				return exitError{"verify found problems"}
			}
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&skipRehash, "skip-rehash", false, "only check that blobs exist with the right size, without reading them")
	cmd.Flags().StringVar(&peer, "repair-from", "", "URL of a peer packyard to fetch corrupt or missing blobs from")
	cmd.Flags().StringVar(&peerToken, "repair-token", "", "token on the peer (env PACKYARD_REPAIR_TOKEN)")
	return cmd
}

// peerFetcher fetches blobs from GET /api/v1/blobs/DIGEST of a peer.
func peerFetcher(base, token string) maint.Fetcher {
	if token == "" {
		token = os.Getenv("PACKYARD_REPAIR_TOKEN")
	}
	base = strings.TrimRight(base, "/")
	hc := &http.Client{Timeout: 30 * time.Minute}
	return func(ctx context.Context, d blob.Digest) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/blobs/"+string(d), nil)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch from %s: %w", base, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("fetch from %s: %s", base, resp.Status)
		}
		return resp.Body, nil
	}
}

func newGCCmd(g *globals) *cobra.Command {
	var sf storeFlags
	var grace time.Duration
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete blobs that no package or retained generation names, after a grace period",
		Long: `Delete blobs that no package (live or removed) and no retained generation
names, once they are older than --grace. Safe while servers, on this machine
or on other nodes, take uploads: a blob is spared while it is young, and each
candidate is checked again just before it is deleted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, b, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer m.Close()
			defer b.Close()
			rep, err := maint.GC(cmd.Context(), m, b, maint.GCOptions{Grace: grace, DryRun: dryRun, Log: cliLogger(cmd)})
			if err != nil {
				return err
			}
			if asJSON, err := g.json(); err != nil || asJSON {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), rep)
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d blobs: %d referenced, %d younger than %s, %s %d (%d bytes)\n",
				rep.Blobs, rep.Referenced, rep.Young, grace, verb, rep.Deleted, rep.Freed)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "spare blobs younger than this")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be deleted, delete nothing")
	return cmd
}

func newMigrateCmd(g *globals) *cobra.Command {
	var sf storeFlags
	var toDB, toBlobs string
	cmd := &cobra.Command{
		Use:   "migrate --to-database SPEC --to-blobs SPEC",
		Short: "Copy an installation to other stores (SQLite+files ↔ PostgreSQL+S3) and verify the copy",
		Long: `Copy every table row and every blob of the configured stores (the source:
--config/--data/--database/--blobs, as serve's) into other stores, then read
everything back and compare. The destination database must be empty. Stop
the servers of the source first. Either direction works:

  packyard migrate --data /var/lib/packyard \
      --to-database postgres://packyard@db/packyard --to-blobs 's3://packages/prod?endpoint=https://minio:9000'
  packyard migrate --database postgres://… --blobs s3://… \
      --to-database sqlite:/srv/packyard/packyard.db --to-blobs file:/srv/packyard/blobs`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if toDB == "" || toBlobs == "" {
				return errors.New("migrate needs --to-database and --to-blobs")
			}
			cfg, err := sf.load(cmd)
			if err != nil {
				return err
			}
			if cfg.MetaStore() == toDB || cfg.BlobStore() == toBlobs {
				return errors.New("migrate: the destination is the source")
			}
			sm, sb, err := openStores(cmd.Context(), cfg.MetaStore(), cfg.BlobStore())
			if err != nil {
				return err
			}
			defer sm.Close()
			defer sb.Close()
			dm, db, err := openStores(cmd.Context(), toDB, toBlobs)
			if err != nil {
				return err
			}
			defer dm.Close()
			defer db.Close()
			rep, err := maint.Migrate(cmd.Context(), sm, sb, dm, db, cliLogger(cmd))
			if err != nil {
				return err
			}
			if asJSON, err := g.json(); err != nil || asJSON {
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), rep)
			}
			total := 0
			for _, n := range rep.Rows {
				total += n
			}
			fmt.Fprintf(cmd.OutOrStdout(), "migrated %d rows and %d blobs (%d copied, %d bytes) to %s and %s; verified\n",
				total, rep.Blobs, rep.BlobsCopied, rep.Bytes, backend.Redact(toDB), toBlobs)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&toDB, "to-database", "", "destination metadata store: sqlite:PATH or postgres://…")
	cmd.Flags().StringVar(&toBlobs, "to-blobs", "", "destination blob store: file:PATH or s3://…")
	return cmd
}
