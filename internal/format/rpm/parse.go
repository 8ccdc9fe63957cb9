package rpm

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	rpmutils "github.com/sassoftware/go-rpmutils"

	"github.com/packyard/packyard/internal/format"
)

// Main header tags read by Parse (rpm lib/rpmtag.h).
const (
	tagName          = 1000
	tagVersion       = 1001
	tagRelease       = 1002
	tagEpoch         = 1003
	tagSummary       = 1004
	tagDescription   = 1005
	tagBuildTime     = 1006
	tagBuildHost     = 1007
	tagSize          = 1009
	tagVendor        = 1011
	tagLicense       = 1014
	tagPackager      = 1015
	tagGroup         = 1016
	tagURL           = 1020
	tagArch          = 1022
	tagOldFilenames  = 1027
	tagFileModes     = 1030
	tagFileFlags     = 1037
	tagSourceRPM     = 1044
	tagArchiveSize   = 1046
	tagChangelogTime = 1080
	tagChangelogName = 1081
	tagChangelogText = 1082
	tagSourcePackage = 1106
	tagDirIndexes    = 1116
	tagBasenames     = 1117
	tagDirnames      = 1118
	tagLongSize      = 5009
)

// Signature header tags read by Parse.
const (
	sigTagLongSize        = 270
	sigTagLongArchiveSize = 271
	sigTagSize            = 1000
	sigTagPayloadSize     = 1007
)

// fileGhost is RPMFILE_GHOST.
const fileGhost = 1 << 6

// changelogLimit is createrepo_c's default --changelog-limit.
const changelogLimit = 10

// File kinds, as createrepo_c writes them in type="…".
const (
	kindFile uint8 = iota
	kindDir
	kindGhost
)

// pkgData is what Render needs, parsed and cleaned. Every string is valid
// UTF-8 that XML can represent.
type pkgData struct {
	name, arch, epoch, version, release string

	summary, description, packager, url string
	license, vendor, group, buildHost   string
	sourceRPM                           string

	buildTime     int64
	sizeInstalled int64
	sizeArchive   int64
	// hdrStart and hdrEnd are rpm:header-range.
	hdrStart, hdrEnd int64
	// sigSize is the signature header's SIZE (LONGSIZE): the bytes of
	// the main header and the payload; 0 when absent.
	sigSize uint64

	// deps are the dependency lists in primary.xml order (see depLists).
	deps [numDepLists][]dep

	dirs  []string
	files []file

	// changes are the changelog entries in other.xml order (oldest of the
	// newest changelogLimit first), with createrepo_c's date adjustment.
	changes []change
}

// file is one file; its path is dirs[dir]+base, or base alone when dir < 0.
type file struct {
	dir     int32
	kind    uint8
	primary bool
	base    string
}

type change struct {
	author, text string
	date         int64
}

// Parse reads the lead, signature header and main header from r (nothing
// of the payload) and returns the package with its parsed metadata.
func (f *Format) Parse(r io.Reader, filename string, params format.UploadParams) (*format.Package, error) {
	b, err := readBlob(r)
	if err != nil {
		return nil, err
	}
	d, err := extract(b)
	if err != nil {
		return nil, err
	}
	first, _ := utf8.DecodeRuneInString(d.name)
	p := &format.Package{
		Identity: format.Identity{
			Name:    d.name,
			Epoch:   d.epoch,
			Version: d.version,
			Release: d.release,
			Arch:    d.arch,
		},
		Summary: d.summary,
		Path:    "Packages/" + string(unicode.ToLower(first)) + "/" + d.name + "-" + d.version + "-" + d.release + "." + d.arch + ".rpm",
		Data:    d,
	}
	return p, nil
}

// guard runs f, a call into go-rpmutils, and turns a panic inside it into
// an error, which the caller reports as ErrCorruptHeader. Panics elsewhere
// are left alone: they are bugs of this package, which tests and fuzzing
// must see.
func guard(f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("go-rpmutils panicked: %v", v)
		}
	}()
	return f()
}

// extract reads the validated headers with go-rpmutils and applies
// createrepo_c's rules (parsehdr.c).
func extract(b *blob) (*pkgData, error) {
	var rh *rpmutils.RpmHeader
	err := guard(func() (err error) {
		rh, err = rpmutils.ReadHeader(bytes.NewReader(b.raw))
		return err
	})
	if err != nil {
		return nil, errorf(ErrCorruptHeader, "reading headers: %v", err)
	}
	h := &hdr{rh: rh, b: b}
	d := &pkgData{hdrStart: b.start, hdrEnd: b.end}
	for _, tag := range []uint32{sigTagLongSize, sigTagSize} {
		if vals, ok := h.nums(tag, true); ok && len(vals) > 0 {
			d.sigSize = vals[0]
			break
		}
	}
	c := cleaner{}

	// Identity.
	name := h.str(tagName)
	version := h.str(tagVersion)
	release := h.str(tagRelease)
	arch := h.str(tagArch)
	epoch := strconv.FormatUint(h.num(tagEpoch), 10)
	if h.err != nil {
		return nil, h.err
	}
	d.name = c.clean("name", name)
	d.version = c.clean("version", version)
	d.release = c.clean("release", release)
	d.epoch = epoch

	// rpm's applyRetrofits: a header with neither SOURCERPM nor
	// SOURCEPACKAGE is a source package if all its files are in the
	// directory "", else a binary package from an unknown source.
	sourceRPM, hasSourceRPM := h.strOK(tagSourceRPM)
	_, hasSourcePackage := b.main.lookup(tagSourcePackage)
	isSource := h.num(tagSourcePackage) != 0
	if !hasSourceRPM && !hasSourcePackage {
		if h.sourceHeuristic() {
			isSource = true
		} else {
			sourceRPM = "(none)"
		}
	}
	if isSource {
		arch = "src"
	}
	if h.err != nil {
		return nil, h.err
	}
	d.arch = c.clean("arch", arch)
	for _, v := range []struct{ what, s string }{{"name", d.name}, {"version", d.version}, {"release", d.release}, {"arch", d.arch}} {
		if c.err != nil {
			break
		}
		if v.s == "" {
			return nil, errorf(ErrInvalidMetadata, "package has no %s", v.what)
		}
		if strings.ContainsRune(v.s, '/') {
			return nil, errorf(ErrInvalidMetadata, "package %s %q contains '/'", v.what, v.s)
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	if d.name[0] == '.' {
		return nil, errorf(ErrInvalidMetadata, "package name %q starts with '.'", d.name)
	}

	d.summary = c.clean("summary", h.str(tagSummary))
	d.description = c.clean("description", h.str(tagDescription))
	d.packager = c.clean("packager", h.str(tagPackager))
	d.url = c.clean("url", h.str(tagURL))
	d.license = c.clean("license", h.str(tagLicense))
	d.vendor = c.clean("vendor", h.str(tagVendor))
	d.group = c.clean("group", h.str(tagGroup))
	d.buildHost = c.clean("buildhost", h.str(tagBuildHost))
	d.sourceRPM = c.clean("sourcerpm", sourceRPM)

	d.buildTime = int64(h.num(tagBuildTime))
	if _, ok := b.main.lookup(tagLongSize); ok {
		d.sizeInstalled = int64(h.num(tagLongSize))
	} else {
		d.sizeInstalled = int64(h.num(tagSize))
	}
	d.sizeArchive = int64(h.archiveSize())

	primaryFiles := h.files(d, &c)
	h.deps(d, &c, primaryFiles)
	h.changelog(d, &c)
	if h.err != nil {
		return nil, h.err
	}
	if c.err != nil {
		return nil, c.err
	}
	return d, nil
}

// hdr reads typed values through go-rpmutils, checking each tag's type
// against the validated index first. The first error sticks.
type hdr struct {
	rh  *rpmutils.RpmHeader
	b   *blob
	err error
}

func (h *hdr) fail(tag uint32, e entry, want string) {
	if h.err == nil {
		h.err = errorf(ErrCorruptHeader, "header tag %d has type %s, want %s", tag, typeNames[e.typ], want)
	}
}

func (h *hdr) wrap(tag uint32, err error) {
	if h.err == nil {
		h.err = errorf(ErrCorruptHeader, "header tag %d: %v", tag, err)
	}
}

// strOK returns the value of a string tag as rpm's headerGetString does:
// the first value of a STRING or I18NSTRING (the C locale), the only value
// of a one-element STRING_ARRAY, and "" otherwise.
func (h *hdr) strOK(tag uint32) (string, bool) {
	e, ok := h.b.main.lookup(tag)
	if !ok || h.err != nil {
		return "", false
	}
	if !isStringType(e.typ) {
		h.fail(tag, e, "a string")
		return "", false
	}
	var vals []string
	if err := guard(func() (err error) { vals, err = h.rh.GetStrings(int(tag)); return err }); err != nil {
		h.wrap(tag, err)
		return "", false
	}
	if len(vals) == 0 || (e.typ == typeStringArray && len(vals) != 1) {
		return "", true
	}
	return vals[0], true
}

func (h *hdr) str(tag uint32) string {
	s, _ := h.strOK(tag)
	return s
}

// strs returns the values of a string array tag, and whether it exists.
func (h *hdr) strs(tag uint32) ([]string, bool) {
	e, ok := h.b.main.lookup(tag)
	if !ok || h.err != nil {
		return nil, false
	}
	if !isStringType(e.typ) {
		h.fail(tag, e, "a string array")
		return nil, false
	}
	var vals []string
	if err := guard(func() (err error) { vals, err = h.rh.GetStrings(int(tag)); return err }); err != nil {
		h.wrap(tag, err)
		return nil, false
	}
	return vals, true
}

// nums returns the values of an integer tag of the main header (sig false)
// or the signature header (sig true), and whether it exists.
func (h *hdr) nums(tag uint32, sig bool) ([]uint64, bool) {
	blk, key := &h.b.main, int(tag)
	if sig {
		blk = &h.b.sig
		if tag >= 1000 {
			key = int(tag) + rpmutilsSigBase
		}
	}
	e, ok := blk.lookup(tag)
	if !ok || h.err != nil {
		return nil, false
	}
	if !isIntType(e.typ) {
		h.fail(tag, e, "an integer")
		return nil, false
	}
	var vals []uint64
	if err := guard(func() (err error) { vals, err = h.rh.GetUint64s(key); return err }); err != nil {
		h.wrap(tag, err)
		return nil, false
	}
	return vals, true
}

// rpmutilsSigBase is how go-rpmutils offsets signature header tags that
// collide with main header tags (its _SIGHEADER_TAG_BASE).
const rpmutilsSigBase = rpmutils.SIG_SIZE - 1000

// num returns the first value of an integer tag, 0 when absent, as rpm's
// headerGetNumber does.
func (h *hdr) num(tag uint32) uint64 {
	vals, _ := h.nums(tag, false)
	if len(vals) == 0 {
		return 0
	}
	return vals[0]
}

// archiveSize returns rpm's LONGARCHIVESIZE after it merged the signature
// header into the main header: the signature's LONGARCHIVESIZE, else
// ARCHIVESIZE (from the main header, else the signature's PAYLOADSIZE).
func (h *hdr) archiveSize() uint64 {
	for _, src := range []struct {
		tag uint32
		sig bool
	}{{sigTagLongArchiveSize, true}, {tagArchiveSize, false}, {sigTagPayloadSize, true}} {
		if vals, ok := h.nums(src.tag, src.sig); ok && len(vals) > 0 {
			return vals[0]
		}
	}
	return 0
}

// sourceHeuristic is rpm's headerIsSourceHeuristic: exactly one directory
// name, and it is empty.
func (h *hdr) sourceHeuristic() bool {
	e, ok := h.b.main.lookup(tagDirnames)
	if ok && e.typ == typeStringArray && e.count == 1 {
		return h.b.main.data[e.offset] == 0
	}
	if !ok {
		if names, ok := h.strs(tagOldFilenames); ok && len(names) > 0 {
			for _, n := range names {
				if strings.Contains(n, "/") {
					return false
				}
			}
			return true
		}
	}
	return false
}

// changelog reads the newest changelogLimit entries, as createrepo_c does.
func (h *hdr) changelog(d *pkgData, c *cleaner) {
	times, ok1 := h.nums(tagChangelogTime, false)
	names, ok2 := h.strs(tagChangelogName)
	texts, ok3 := h.strs(tagChangelogText)
	if !(ok1 && ok2 && ok3) {
		return
	}
	n := min(len(times), len(names), len(texts), changelogLimit)
	out := make([]change, 0, n)
	var last int64
	for i := range n {
		t := int64(times[i])
		author := names[i]
		for len(author) > 1 && author[len(author)-1] == ' ' {
			author = author[:len(author)-1]
		}
		// Clones let the rest of a long changelog be collected.
		out = append(out, change{
			author: strings.Clone(c.clean("changelog author", author)),
			text:   strings.Clone(c.clean("changelog text", texts[i])),
			date:   t,
		})
		if t == last {
			// createrepo_c makes equal dates distinct by moving the newer
			// entries one second later; it counts in a C int.
			tmp := int32(t)
			for j := len(out) - 2; j >= 0 && out[j].date == int64(tmp); j-- {
				out[j].date++
				tmp++
			}
		} else {
			last = t
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	d.changes = out
}
