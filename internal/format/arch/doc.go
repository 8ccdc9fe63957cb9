// Package arch implements the pacman (Arch Linux) package format:
// .pkg.tar.zst, .pkg.tar.xz and .pkg.tar.gz files in repositories laid
// out as repo-add writes them.
//
// ReadPackage reads a package file, which may come from anyone, to its
// end with bounded memory and without touching the filesystem. It
// follows:
//
//   - makepkg, which writes a package as a tar archive (bsdtar, names
//     relative and without "./", .PKGINFO among the first entries)
//     compressed by PKGEXT, and writes .PKGINFO in write_pkginfo:
//     https://gitlab.archlinux.org/pacman/pacman/-/blob/v6.1.0/scripts/makepkg.sh.in
//   - PKGBUILD(5), for names, versions and architectures:
//     https://man.archlinux.org/man/PKGBUILD.5
//   - libalpm, which reads .PKGINFO (parse_descfile in
//     lib/libalpm/be_package.c), skips every entry whose name starts with
//     '.' when it installs a package (lib/libalpm/add.c) and compares
//     versions (lib/libalpm/version.c, vercmp(8)):
//     https://gitlab.archlinux.org/pacman/pacman/-/tree/v6.1.0/lib/libalpm
//   - repo-add(8), whose files entry lists what `bsdtar --exclude='^.*' -tf`
//     prints, through `LC_ALL=C sort -u`:
//     https://gitlab.archlinux.org/pacman/pacman/-/blob/v6.1.0/scripts/repo-add.sh.in
//
// The compression is found by its magic bytes, not by the file name.
// Entry names must be clean relative paths (no leading '/', no empty, "."
// or ".." elements, no control characters, valid UTF-8); symlinks, hard
// links, FIFOs and device nodes are allowed as content, and their targets
// are never looked at.
//
// Bounds, each of which gives an error wrapping ErrTooLarge (and so
// format.ErrPackageTooLarge) as soon as it is crossed:
//
//   - MaxPkgInfoSize for .PKGINFO, MaxEntries for the tar entries,
//     MaxPathLen for an entry name, MaxFilesSize for the file list;
//   - the decompressed tar stream may at no point be larger than
//     MaxExpansion times the compressed bytes read so far plus
//     ExpansionSlack, so that a decompression bomb is stopped after a
//     few tens of MiB of output, whatever it declares;
//   - MaxWindowSize for the window a zstd frame declares and the
//     dictionary an xz block needs (both decoders allocate them at once);
//     the xz dictionaries of all blocks together may not exceed
//     MaxWindowSize plus MaxExpansion times the compressed bytes read.
//
// Memory in use is therefore the file list, the .PKGINFO and the
// decoder's window: a few MiB for a package compressed by makepkg's
// defaults, 32 MiB for Arch's own packages (zstd --ultra -20), at most
// MaxWindowSize whatever the input.
package arch
