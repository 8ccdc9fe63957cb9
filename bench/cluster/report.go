package main

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/packyard/packyard/bench/internal/corpus"
	"github.com/packyard/packyard/bench/internal/server"
	"github.com/packyard/packyard/bench/internal/stats"
)

// readAll measures reads on in (PostgreSQL + MinIO, presigned reads off):
// repomd.xml, primary.xml.gz and the large package from a node, the large
// package from a node with presigned reads on (the client follows the
// redirect to MinIO), and the same three files from nginx on local disk.
func (r *run) readAll(ctx context.Context, in *install, big corpus.File) error {
	cfg := r.cfg
	node := in.nodes[0]
	c := server.NewClient(node, benchRepo, 4)
	up, err := c.Upload(ctx, big, nil, true)
	if err != nil {
		return err
	}
	presign, err := in.node(cfg.bin, "PACKYARD_S3_PRESIGN_READS=true")
	if err != nil {
		return err
	}
	md, err := c.Fetch("repodata/repomd.xml")
	if err != nil {
		return err
	}
	href, err := primaryHref(md)
	if err != nil {
		return err
	}
	primary, err := c.Fetch(href)
	if err != nil {
		return err
	}
	bigBody, err := c.Fetch(up.Path)
	if err != nil {
		return err
	}
	if int64(len(bigBody)) != big.Size {
		return fmt.Errorf("GET %s: %d bytes, the file has %d", up.Path, len(bigBody), big.Size)
	}
	r.bigSize = big.Size
	r.metaSizes["repomd.xml"], r.metaSizes["primary.xml.gz"] = int64(len(md)), int64(len(primary))

	// nginx serves the same bytes from disk, under the same paths.
	root := filepath.Join(cfg.work, "nginx-root")
	for rel, body := range map[string][]byte{"repodata/repomd.xml": md, href: primary, up.Path: bigBody} {
		p := filepath.Join(root, benchRepo, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			return err
		}
	}
	ngx, err := startNginx(cfg.nginx, filepath.Join(cfg.work, "nginx"), root)
	if err != nil {
		return err
	}
	defer ngx.stop()

	bigName := fmt.Sprintf("%s package", sizeName(big.Size))
	cases := []struct {
		file, srv, base, path string
		size                  int64
	}{
		{"repomd.xml", "packyard on S3", node.Base, "repodata/repomd.xml", int64(len(md))},
		{"repomd.xml", "nginx, local disk", ngx.base, "repodata/repomd.xml", int64(len(md))},
		{"primary.xml.gz", "packyard on S3", node.Base, href, int64(len(primary))},
		{"primary.xml.gz", "nginx, local disk", ngx.base, href, int64(len(primary))},
		{bigName, "packyard on S3, streamed", node.Base, up.Path, big.Size},
		{bigName, "packyard on S3, presigned redirect", presign.Base, up.Path, big.Size},
		{bigName, "nginx, local disk", ngx.base, up.Path, big.Size},
	}
	cfg.logf("read throughput: %d clients, %s each", cfg.readers, cfg.readFor)
	for _, k := range cases {
		res, err := r.measureRead(k.file, k.srv, k.base+"/"+benchRepo+"/"+k.path, k.size)
		if err != nil {
			return fmt.Errorf("read %s from %s: %w", k.file, k.srv, err)
		}
		r.reads = append(r.reads, res)
	}
	return nil
}

// primaryHref returns the location of the primary metadata a repomd.xml
// names.
func primaryHref(repomd []byte) (string, error) {
	var d struct {
		Data []struct {
			Type     string `xml:"type,attr"`
			Location struct {
				Href string `xml:"href,attr"`
			} `xml:"location"`
		} `xml:"data"`
	}
	if err := xml.Unmarshal(repomd, &d); err != nil {
		return "", fmt.Errorf("parse repomd.xml: %w", err)
	}
	for _, x := range d.Data {
		if x.Type == "primary" && x.Location.Href != "" {
			return x.Location.Href, nil
		}
	}
	return "", fmt.Errorf("repomd.xml names no primary")
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func mbps(bytes int64, d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(bytes)/(1<<20)/d.Seconds())
}

// markdown is the report.
func (r *run) markdown() string {
	cfg := r.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "### Upload → visible\n\n")
	fmt.Fprintf(&b, "One package uploaded (PUT, waiting for publication) into a repository of N\n"+
		"packages, timed from the start of the PUT until a GET of repomd.xml returns\n"+
		"the new generation; %d samples per row, one node.\n\n", cfg.samples)
	b.WriteString("| N | backend | p50 | p95 | max | preload of N (8 concurrent PUTs) |\n| ---: | --- | ---: | ---: | ---: | ---: |\n")
	for _, v := range r.visible {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", stats.Thousands(v.N), v.Backend,
			stats.MS(v.Visible.P50()), stats.MS(v.Visible.P95()), stats.MS(v.Visible.Max()), stats.Secs(v.Preload))
	}
	fmt.Fprintf(&b, "\n### Aggregate upload throughput\n\n")
	fmt.Fprintf(&b, "%s packages uploaded into one new repository by %d concurrent clients, each\n"+
		"PUT waiting for publication (the API's default), spread evenly over the nodes.\n\n", stats.Thousands(cfg.upN), cfg.clients)
	b.WriteString("| setup | packages/s | MiB/s | wall |\n| --- | ---: | ---: | ---: |\n")
	for _, t := range r.throughput {
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s |\n", t.Setup, float64(t.Packages)/t.Elapsed.Seconds(), mbps(t.Bytes, t.Elapsed), stats.Secs(t.Elapsed))
	}
	fmt.Fprintf(&b, "\n### Read throughput\n\n")
	fmt.Fprintf(&b, "%d concurrent keep-alive clients GET one file for %s each, on the two-node\n"+
		"PostgreSQL + MinIO installation above (%s packages; repomd.xml %s, primary.xml.gz %s);\n"+
		"nginx serves the same bytes from local disk. The presigned rows follow the\n"+
		"redirect to MinIO, as dnf does.\n\n", cfg.readers, cfg.readFor, stats.Thousands(cfg.upN+1),
		sizeName(r.metaSizes["repomd.xml"]), sizeName(r.metaSizes["primary.xml.gz"]))
	b.WriteString("| file | server | requests/s | MiB/s |\n| --- | --- | ---: | ---: |\n")
	for _, x := range r.reads {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s |\n", x.File, x.Server, float64(x.Requests)/x.Elapsed.Seconds(), mbps(x.Bytes, x.Elapsed))
	}
	b.WriteString("\nEverything (clients, packyard nodes, PostgreSQL, MinIO, nginx) runs on the one machine described above.\n")
	return b.String()
}
