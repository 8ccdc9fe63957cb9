// Package deb implements the Debian binary package format (.deb and
// .udeb) for APT repositories.
//
// ReadDeb reads a package file, which may come from anyone, with bounded
// memory and without touching the filesystem. It follows:
//
//   - deb(5), the archive: https://manpages.debian.org/bookworm/dpkg-dev/deb.5.en.html
//     An ar archive ("!<arch>\n", 60-byte member headers, members padded
//     to an even size) whose members are debian-binary ("2.x\n"),
//     control.tar (uncompressed, .gz, .xz or .zst), data.tar (uncompressed,
//     .gz, .xz, .zst, .bz2 or .lzma), in this order, with members whose
//     names start with '_' allowed between them and anything allowed after
//     data.tar. Member names are dpkg's: the 16-byte name field with
//     trailing spaces and one trailing '/' removed, no long-name
//     extensions.
//   - deb-control(5) and deb822(5), the control file, a single paragraph:
//     https://manpages.debian.org/bookworm/dpkg-dev/deb-control.5.en.html
//     https://manpages.debian.org/bookworm/dpkg-dev/deb822.5.en.html
//   - Debian Policy 5.6.7 (package names) and 5.6.12 (versions), and
//     dpkg's version comparison:
//     https://www.debian.org/doc/debian-policy/ch-controlfields.html
//
// Bounds, each of which gives an error wrapping ErrTooLarge (and so
// format.ErrPackageTooLarge) as soon as it is crossed:
//
//   - MaxDebianBinarySize for the debian-binary member;
//   - MaxControlMemberSize for the control.tar member as stored;
//   - MaxControlTarSize for the decompressed control.tar, so that a
//     decompression bomb is stopped after that many bytes;
//   - MaxControlSize for the control file, MaxControlFields for its
//     fields;
//   - MaxZstdWindow for the window a zstd frame may declare (the decoder
//     allocates it at once);
//   - for xz, whose block headers may declare dictionaries of up to 4 GiB:
//     each block gets a dictionary no larger than the size its header
//     gives or else the output still allowed, a stream that declares
//     (in its LZMA2 chunk headers) more output than allowed is refused
//     at once, and a control member may have at most 64 blocks and 16
//     times MaxControlTarSize of dictionaries in all, allocated one after
//     the other.
//
// The data.tar member is hashed and skipped, never decompressed; other
// members of the control.tar than the control file are skipped. Memory
// in use at any time is therefore a few MiB whatever the input (about
// 9 MiB for a zstd control member with the largest window allowed).
package deb
