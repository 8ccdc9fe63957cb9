package rpm

import (
	"slices"
	"strings"
)

// Dependency lists, in the order primary.xml lists them.
const (
	listProvides = iota
	listRequires
	listConflicts
	listObsoletes
	listSuggests
	listEnhances
	listRecommends
	listSupplements
	numDepLists
)

var depElems = [numDepLists]string{
	listProvides:    "rpm:provides",
	listRequires:    "rpm:requires",
	listConflicts:   "rpm:conflicts",
	listObsoletes:   "rpm:obsoletes",
	listSuggests:    "rpm:suggests",
	listEnhances:    "rpm:enhances",
	listRecommends:  "rpm:recommends",
	listSupplements: "rpm:supplements",
}

// Dependency tag kinds, in the order createrepo_c reads them (its
// dep_items, with the legacy weak dependencies its Debian build enables).
const (
	kindProvides = iota
	kindConflicts
	kindObsoletes
	kindRequires
	kindSuggests
	kindEnhances
	kindRecommends
	kindSupplements
	kindOldSuggests
	kindOldEnhances
)

// depTags are the name, flags and version tags of each kind, indexed by
// kind.
var depTags = [...]struct {
	kind                 int
	name, flags, version uint32
}{
	{kindProvides, 1047, 1112, 1113},
	{kindConflicts, 1054, 1053, 1055},
	{kindObsoletes, 1090, 1114, 1115},
	{kindRequires, 1049, 1048, 1050},
	{kindSuggests, 5049, 5051, 5050},
	{kindEnhances, 5055, 5057, 5056},
	{kindRecommends, 5046, 5048, 5047},
	{kindSupplements, 5052, 5054, 5053},
	{kindOldSuggests, 1156, 1158, 1157},
	{kindOldEnhances, 1159, 1161, 1160},
}

// Dependency sense flags (RPMSENSE_*).
const (
	senseLess       = 1 << 1
	senseGreater    = 1 << 2
	senseEqual      = 1 << 3
	sensePreReq     = 1 << 6
	senseScriptPre  = 1 << 9
	senseScriptPost = 1 << 10
	senseMissingOK  = 1 << 19
	senseStrong     = 1 << 27
)

// dep is one dependency entry as primary.xml shows it.
type dep struct {
	name, epoch, ver, rel string
	flags                 cmpFlag
	pre                   bool
}

// cmpFlag is the comparison of a dependency.
type cmpFlag uint8

// Comparisons createrepo_c names; flagNone covers everything else.
const (
	flagNone cmpFlag = iota
	flagLT
	flagGT
	flagEQ
	flagLE
	flagGE
)

var flagNames = [...]string{flagNone: "", flagLT: "LT", flagGT: "GT", flagEQ: "EQ", flagLE: "LE", flagGE: "GE"}

func (f cmpFlag) String() string { return flagNames[f] }

// toCmpFlag is createrepo_c's cr_flag_to_str: only the five comparisons
// have a name; anything else is shown without flags (and without version).
func toCmpFlag(f uint64) cmpFlag {
	switch f & 0xf {
	case senseLess:
		return flagLT
	case senseGreater:
		return flagGT
	case senseEqual:
		return flagEQ
	case senseLess | senseEqual:
		return flagLE
	case senseGreater | senseEqual:
		return flagGE
	}
	return flagNone
}

// splitEVR is createrepo_c's cr_str_to_evr: "[epoch:]version[-release]",
// epoch "0" when absent, split at the first ':' and the first '-' after
// it. ok is false when the epoch is not a number as C's strtol reads one;
// createrepo_c then skips the dependency.
func splitEVR(s string) (epoch, ver, rel string, ok bool) {
	if s == "" {
		return "", "", "", true
	}
	epoch = "0"
	if i := strings.IndexByte(s, ':'); i >= 0 {
		if !strtolNumber(s[:i]) {
			return "", "", "", false
		}
		if i > 0 {
			epoch = s[:i]
		}
		s = s[i+1:]
	}
	if j := strings.IndexByte(s, '-'); j >= 0 {
		return epoch, s[:j], s[j+1:], true
	}
	return epoch, s, "", true
}

// strtolNumber reports whether strtol(s, &end, 10) consumes all of s: it
// is empty, or optional white space, an optional sign and digits.
func strtolNumber(s string) bool {
	if s == "" {
		return true
	}
	i := 0
	for i < len(s) && strings.IndexByte(" \t\n\v\f\r", s[i]) >= 0 {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i == len(s) {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// deps reads all dependency tags and applies createrepo_c's rules: drop
// rpmlib() requirements, requirements on the package's own primary files
// and on its own provides (same name, flags and version), repetitions of
// the last requirement of a name, and dependencies with a non-numeric
// epoch; keep only the highest libc.so.6 requirement (listed last); mark
// pre="1" for Requires(pre), Requires(post) and PreReq; sort legacy hints
// (Requires(hint), old suggests and enhances) into the weak lists.
func (h *hdr) deps(d *pkgData, c *cleaner, primaryFiles map[string]struct{}) {
	provided := make(map[string]struct{})
	type depArrays struct {
		names, versions []string
		flags           []uint64
		ok              bool
	}
	var arrays [len(depTags)]depArrays
	for k, dt := range depTags {
		a := &arrays[k]
		var ok1, ok2, ok3 bool
		a.names, ok1 = h.strs(dt.name)
		a.flags, ok2 = h.nums(dt.flags, false)
		a.versions, ok3 = h.strs(dt.version)
		if h.err != nil {
			return
		}
		a.ok = ok1 && ok2 && ok3
	}
	// Only provides whose name is also required can drop a requirement.
	// When provides outnumber requirements, the names of the requirements
	// are the smaller set to remember.
	var required map[string]struct{}
	if prov, req := arrays[kindProvides], arrays[kindRequires]; prov.ok && req.ok && len(prov.names) > len(req.names) {
		required = make(map[string]struct{}, len(req.names))
		for _, name := range req.names {
			required[name] = struct{}{}
		}
	}

	for k, dt := range depTags {
		if !arrays[k].ok {
			continue
		}
		names, flags, versions := arrays[k].names, arrays[k].flags, arrays[k].versions
		n := min(len(names), len(flags), len(versions))
		if l := depList(dt.kind); len(d.deps[l]) == 0 {
			d.deps[l] = make([]dep, 0, n)
		}
		var libc dep
		hasLibc := false
		var repeated []bool
		if dt.kind == kindRequires {
			repeated = repeatedRequires(names[:n], flags, versions, primaryFiles, provided)
		}
		for i := range n {
			name, fl, ver := names[i], flags[i], versions[i]
			cf := toCmpFlag(fl)
			fs := cf.String()
			pre := false
			if dt.kind == kindRequires {
				if requireFiltered(name, fs, ver, primaryFiles, provided) {
					continue
				}
				pre = isPre(fl)
				if repeated != nil && repeated[i] {
					continue
				}
			}
			e, v, r, ok := splitEVR(ver)
			if !ok {
				continue
			}
			dp := dep{name: name, flags: cf, epoch: e, ver: v, rel: r}
			list := -1
			switch dt.kind {
			case kindProvides:
				if _, ok := required[name]; ok || required == nil {
					provided[name+fs+ver] = struct{}{}
				}
				list = listProvides
			case kindConflicts:
				list = listConflicts
			case kindObsoletes:
				list = listObsoletes
			case kindRequires:
				if fl&senseMissingOK != 0 {
					list = listRecommends
					break
				}
				dp.pre = pre
				if strings.HasPrefix(name, "libc.so.6") {
					if !hasLibc || compareLibc(libc.name, name) == 2 {
						libc, hasLibc = dp, true
					}
					break
				}
				list = listRequires
			case kindSuggests:
				list = listSuggests
			case kindEnhances:
				list = listEnhances
			case kindRecommends:
				list = listRecommends
			case kindSupplements:
				list = listSupplements
			case kindOldSuggests:
				list = listSuggests
				if fl&senseStrong != 0 {
					list = listRecommends
				}
			case kindOldEnhances:
				list = listEnhances
				if fl&senseStrong != 0 {
					list = listSupplements
				}
			}
			if list >= 0 {
				d.deps[list] = append(d.deps[list], dp)
			}
		}
		if hasLibc {
			d.deps[listRequires] = append(d.deps[listRequires], libc)
		}
	}
	for l := range d.deps {
		for i := range d.deps[l] {
			dp := &d.deps[l][i]
			dp.name = c.clean("dependency", dp.name)
			dp.epoch = c.clean("dependency epoch", dp.epoch)
			dp.ver = c.clean("dependency version", dp.ver)
			dp.rel = c.clean("dependency release", dp.rel)
		}
	}
}

// requireFiltered reports whether createrepo_c drops a requirement before
// its repetition check: rpmlib() features, the package's own primary files
// and its own provides.
func requireFiltered(name, fs, ver string, primaryFiles, provided map[string]struct{}) bool {
	if strings.HasPrefix(name, "rpmlib(") {
		return true
	}
	if strings.HasPrefix(name, "/") {
		if _, own := primaryFiles[name]; own {
			return true
		}
	}
	_, own := provided[name+fs+ver]
	return own
}

// repeatedRequires returns which requirements createrepo_c drops as
// repetitions (nil if none): it remembers, per name, the last requirement
// it kept as a plain requirement, and drops a requirement with the same
// name, flags, version and pre flag as that one. Requirements of different
// names do not interact, so each name's requirements are walked in header
// order after a stable sort by name; this costs an index per requirement
// instead of a map entry.
func repeatedRequires(names []string, flags []uint64, versions []string, primaryFiles, provided map[string]struct{}) []bool {
	idx := make([]int32, 0, len(names))
	for i, name := range names {
		fl := flags[i]
		if requireFiltered(name, toCmpFlag(fl).String(), versions[i], primaryFiles, provided) {
			continue
		}
		if _, _, _, ok := splitEVR(versions[i]); !ok {
			continue // dropped anyway, never remembered
		}
		if fl&senseMissingOK == 0 && strings.HasPrefix(name, "libc.so.6") {
			continue // never remembered, so never a repetition
		}
		idx = append(idx, int32(i))
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return strings.Compare(names[a], names[b]) })
	var repeated []bool
	for g := 0; g < len(idx); {
		name := names[idx[g]]
		last := int32(-1)
		for ; g < len(idx) && names[idx[g]] == name; g++ {
			i := idx[g]
			if last >= 0 && sameRequire(flags[i], versions[i], flags[last], versions[last]) {
				if repeated == nil {
					repeated = make([]bool, len(names))
				}
				repeated[i] = true
				continue
			}
			if flags[i]&senseMissingOK == 0 {
				last = i // weak hints are checked but not remembered
			}
		}
	}
	return repeated
}

func isPre(fl uint64) bool {
	return fl&(sensePreReq|senseScriptPre|senseScriptPost) != 0
}

func sameRequire(fa uint64, va string, fb uint64, vb string) bool {
	return toCmpFlag(fa) == toCmpFlag(fb) && isPre(fa) == isPre(fb) && va == vb
}

// depList is the list a dependency kind mostly goes to.
func depList(kind int) int {
	switch kind {
	case kindProvides:
		return listProvides
	case kindConflicts:
		return listConflicts
	case kindObsoletes:
		return listObsoletes
	case kindRequires:
		return listRequires
	case kindSuggests, kindOldSuggests:
		return listSuggests
	case kindEnhances, kindOldEnhances:
		return listEnhances
	case kindRecommends:
		return listRecommends
	}
	return listSupplements
}

// compareLibc is createrepo_c's cr_compare_dependency for two
// "libc.so.6…" names: it compares the version in the first parentheses.
// It returns 0 when equal, 1 when a is higher, 2 when b is higher.
func compareLibc(a, b string) int {
	i, j := strings.IndexByte(a, '('), strings.IndexByte(b, '(')
	switch {
	case i < 0 && j < 0:
		return 0
	case i < 0:
		return 2
	case j < 0:
		return 1
	}
	ie, je := strings.IndexByte(a[i:], ')'), strings.IndexByte(b[j:], ')')
	switch {
	case ie < 0 && je < 0:
		return -1
	case ie < 0:
		return 2
	case je < 0:
		return 1
	}
	ie, je = i+ie, j+je
	i, j = i+1, j+1
	switch {
	case i == ie && j == je:
		return 0
	case i == ie:
		return 2
	case j == je:
		return 1
	}
	for i < len(a) && (a[i] < '0' || a[i] > '9') {
		i++
	}
	for j < len(b) && (b[j] < '0' || b[j] > '9') {
		j++
	}
	switch {
	case i > ie && j > je:
		return 0
	case i > ie:
		return 2
	case j > je:
		return 1
	}
	switch vercmp(a[i:ie], b[j:je]) {
	case 1:
		return 1
	case -1:
		return 2
	}
	return 0
}
