package rpm

import "encoding/xml"

// XML shapes of the metadata files, for the semantic comparison.

type xRepomd struct {
	Revision int64 `xml:"revision"`
	Data     []struct {
		Type     string `xml:"type,attr"`
		Location struct {
			Href string `xml:"href,attr"`
		} `xml:"location"`
		Timestamp int64 `xml:"timestamp"`
	} `xml:"data"`
}

type xVersion struct {
	Epoch string `xml:"epoch,attr"`
	Ver   string `xml:"ver,attr"`
	Rel   string `xml:"rel,attr"`
}

type xEntry struct {
	Name  string `xml:"name,attr"`
	Flags string `xml:"flags,attr"`
	Epoch string `xml:"epoch,attr"`
	Ver   string `xml:"ver,attr"`
	Rel   string `xml:"rel,attr"`
	Pre   string `xml:"pre,attr"`
}

type xDeps struct {
	Entries []xEntry `xml:"http://linux.duke.edu/metadata/rpm entry"`
}

type xFile struct {
	Type string `xml:"type,attr"`
	Path string `xml:",chardata"`
}

type xPrimary struct {
	XMLName  xml.Name   `xml:"http://linux.duke.edu/metadata/common metadata"`
	Count    int        `xml:"packages,attr"`
	Packages []xPackage `xml:"package"`
}

type xPackage struct {
	Type     string   `xml:"type,attr"`
	Name     string   `xml:"name"`
	Arch     string   `xml:"arch"`
	Version  xVersion `xml:"version"`
	Checksum struct {
		Type  string `xml:"type,attr"`
		PkgID string `xml:"pkgid,attr"`
		Value string `xml:",chardata"`
	} `xml:"checksum"`
	Summary     string `xml:"summary"`
	Description string `xml:"description"`
	Packager    string `xml:"packager"`
	URL         string `xml:"url"`
	Time        struct {
		File  int64 `xml:"file,attr"`
		Build int64 `xml:"build,attr"`
	} `xml:"time"`
	Size struct {
		Package   int64 `xml:"package,attr"`
		Installed int64 `xml:"installed,attr"`
		Archive   int64 `xml:"archive,attr"`
	} `xml:"size"`
	Location struct {
		Href string `xml:"href,attr"`
	} `xml:"location"`
	Format xFormat `xml:"format"`
}

type xFormat struct {
	License     string `xml:"http://linux.duke.edu/metadata/rpm license"`
	Vendor      string `xml:"http://linux.duke.edu/metadata/rpm vendor"`
	Group       string `xml:"http://linux.duke.edu/metadata/rpm group"`
	BuildHost   string `xml:"http://linux.duke.edu/metadata/rpm buildhost"`
	SourceRPM   string `xml:"http://linux.duke.edu/metadata/rpm sourcerpm"`
	HeaderRange struct {
		Start int64 `xml:"start,attr"`
		End   int64 `xml:"end,attr"`
	} `xml:"http://linux.duke.edu/metadata/rpm header-range"`
	Provides    *xDeps  `xml:"http://linux.duke.edu/metadata/rpm provides"`
	Requires    *xDeps  `xml:"http://linux.duke.edu/metadata/rpm requires"`
	Conflicts   *xDeps  `xml:"http://linux.duke.edu/metadata/rpm conflicts"`
	Obsoletes   *xDeps  `xml:"http://linux.duke.edu/metadata/rpm obsoletes"`
	Suggests    *xDeps  `xml:"http://linux.duke.edu/metadata/rpm suggests"`
	Enhances    *xDeps  `xml:"http://linux.duke.edu/metadata/rpm enhances"`
	Recommends  *xDeps  `xml:"http://linux.duke.edu/metadata/rpm recommends"`
	Supplements *xDeps  `xml:"http://linux.duke.edu/metadata/rpm supplements"`
	Files       []xFile `xml:"file"`
}

type xFilelists struct {
	XMLName  xml.Name            `xml:"http://linux.duke.edu/metadata/filelists filelists"`
	Count    int                 `xml:"packages,attr"`
	Packages []xFilelistsPackage `xml:"package"`
}

type xFilelistsPackage struct {
	PkgID   string   `xml:"pkgid,attr"`
	Name    string   `xml:"name,attr"`
	Arch    string   `xml:"arch,attr"`
	Version xVersion `xml:"version"`
	Files   []xFile  `xml:"file"`
}

type xOther struct {
	XMLName  xml.Name        `xml:"http://linux.duke.edu/metadata/other otherdata"`
	Count    int             `xml:"packages,attr"`
	Packages []xOtherPackage `xml:"package"`
}

type xOtherPackage struct {
	PkgID     string   `xml:"pkgid,attr"`
	Name      string   `xml:"name,attr"`
	Arch      string   `xml:"arch,attr"`
	Version   xVersion `xml:"version"`
	Changelog []struct {
		Author string `xml:"author,attr"`
		Date   int64  `xml:"date,attr"`
		Text   string `xml:",chardata"`
	} `xml:"changelog"`
}
