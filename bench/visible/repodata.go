package main

import (
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
)

type repomdDoc struct {
	Revision string `xml:"revision"`
	Data     []struct {
		Type     string `xml:"type,attr"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
	} `xml:"data"`
}

// primaryHref returns the location of the primary metadata named by a
// repomd.xml.
func primaryHref(repomd []byte) (string, error) {
	var d repomdDoc
	if err := xml.Unmarshal(repomd, &d); err != nil {
		return "", fmt.Errorf("parse repomd.xml: %w", err)
	}
	for _, x := range d.Data {
		if x.Type == "primary" {
			if x.Location.Href == "" {
				return "", fmt.Errorf("repomd.xml: primary has no location")
			}
			return x.Location.Href, nil
		}
	}
	return "", fmt.Errorf("repomd.xml names no primary")
}

// decode decompresses a metadata file by its name's extension.
func decode(name string, data []byte) ([]byte, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(data)) // multistream by default
		if err != nil {
			return nil, err
		}
		return io.ReadAll(zr)
	case strings.HasSuffix(name, ".zst"):
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		return io.ReadAll(zr)
	case strings.HasSuffix(name, ".xml"):
		return data, nil
	}
	return nil, fmt.Errorf("unknown metadata encoding of %s", name)
}

var pkgidMark = []byte(`pkgid="YES">`)

// primaryPkgids returns the sha256 pkgids of every <package> of a primary
// document and the number of <package> elements.
func primaryPkgids(primary []byte) (map[string]bool, int) {
	ids := map[string]bool{}
	rest := primary
	for {
		i := bytes.Index(rest, pkgidMark)
		if i < 0 {
			break
		}
		rest = rest[i+len(pkgidMark):]
		j := bytes.IndexByte(rest, '<')
		if j < 0 {
			break
		}
		ids[string(rest[:j])] = true
		rest = rest[j:]
	}
	return ids, bytes.Count(primary, []byte("<package "))
}

// primaryHas says whether a primary names a package with this sha256.
func primaryHas(primary []byte, sha string) bool {
	return bytes.Contains(primary, []byte(`pkgid="YES">`+sha+`</checksum>`))
}
