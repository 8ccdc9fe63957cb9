package rpm

// rpmbuildSpecs are spec files for the real rpmbuild.
var rpmbuildSpecs = map[string]string{
	"bar": `Name: bar
Epoch: 3
Version: 1.2.3
Release: 4
Summary: Bar & <baz> "quoted" — ünïcödé
License: MIT and (GPL+ or Artistic)
URL: https://example.com/bar?a=1&b=2
Group: Applications/Tést
Vendor: ACME "Corp" <acme@example.com>
Packager: Jöhn Doe <john@example.com>
BuildArch: noarch
Requires: coreutils >= 8.0
Requires: libfoo = 2:1.0-3
Requires(pre): shadow-utils
Requires(post): /bin/sh
Requires(preun): systemd
Requires(postun): glibc
Requires: /usr/bin/bar
Requires: /etc/bar.conf
Requires: /opt/nonprimary/thing
Requires: bar-provided
Requires: libc.so.6(GLIBC_2.4)
Requires: libc.so.6(GLIBC_2.17)
Requires: libc.so.6()
Requires: (pkgA or pkgB)
Provides: bar-provided
Provides: virtual(bar) = 1.0
Provides: weird<thing> > 1
Conflicts: oldbar < 1.0
Obsoletes: bar-legacy <= 2.0-1
Recommends: rec-pkg >= 1
Suggests: sug-pkg
Supplements: (bar-plugin and foo)
Enhances: enh-pkg > 0.5
OrderWithRequires: ordered

%description
Line one with <tags> & "quotes" and 'apostrophes'.
Tab	here. Ünïcødé 日本語 emoji 😀

Second paragraph.

%prep
%build
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc/bar %{buildroot}/usr/share/bar/sub %{buildroot}/var/log %{buildroot}/usr/sbin %{buildroot}/opt/x/bin
echo hi > %{buildroot}/usr/bin/bar
echo cfg > %{buildroot}/etc/bar.conf
echo cfg2 > %{buildroot}/etc/bar/inner.conf
echo data > "%{buildroot}/usr/share/bar/sub/da&ta <1>.txt"
echo s > %{buildroot}/usr/sbin/sbar
echo o > %{buildroot}/opt/x/bin/tool
touch %{buildroot}/var/log/bar.log
ln -s bar %{buildroot}/usr/bin/bar-link

%pre
exit 0

%post
exit 0

%files
/usr/bin/bar
/usr/bin/bar-link
/usr/sbin/sbar
/opt/x/bin/tool
%config(noreplace) /etc/bar.conf
%dir /etc/bar
/etc/bar/inner.conf
%dir /usr/share/bar
/usr/share/bar/sub
%ghost /var/log/bar.log

%changelog
* Mon Jan 02 2023 Jöhn Doe <john@example.com> - 3:1.2.3-4
- Newest entry with <xml> & stuff
* Mon Jan 02 2023 Same Day <same@example.com> - 1.2.3-3
- same day entry
* Sun Jan 01 2023 Alice <alice@example.com>
- another
* Sat Dec 31 2022 Bob <bob@example.com> - 1.0-1
- e4
* Fri Dec 30 2022 Bob <bob@example.com> - 1.0-1
- e5
* Thu Dec 29 2022 Bob <bob@example.com> - 1.0-1
- e6
* Wed Dec 28 2022 Bob <bob@example.com> - 1.0-1
- e7
* Tue Dec 27 2022 Bob <bob@example.com> - 1.0-1
- e8
* Mon Dec 26 2022 Bob <bob@example.com> - 1.0-1
- e9
* Sun Dec 25 2022 Bob <bob@example.com> - 1.0-1
- e10
* Sat Dec 24 2022 Bob <bob@example.com> - 1.0-1
- e11
* Fri Dec 23 2022 Bob <bob@example.com> - 1.0-1
- e12
`,
	"qux": `Name: qux
Version: 0.9~beta2
Release: 1
Summary: Qux daemon
Summary(de): Qux-Dienst
License: Apache-2.0
URL: https://example.org/qux

%description
Qux runs things.

%description -l de
Qux führt Dinge aus.

%package devel
Summary: Development files for qux
Requires: qux = %{version}-%{release}
Provides: qux-headers = %{version}

%description devel
Headers.

%prep
%build
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/usr/include/qux %{buildroot}/usr/lib/systemd/system %{buildroot}/etc/qux %{buildroot}/usr/share/doc/qux
printf '#!/bin/sh\necho qux\n' > %{buildroot}/usr/bin/qux
chmod 755 %{buildroot}/usr/bin/qux
echo '[Unit]' > %{buildroot}/usr/lib/systemd/system/qux.service
echo 'x=1' > "%{buildroot}/etc/qux/qux config.conf"
echo '#define QUX 1' > %{buildroot}/usr/include/qux/qux.h
echo readme > %{buildroot}/usr/share/doc/qux/README

%pre
getent group qux >/dev/null || groupadd -r qux
exit 0

%preun
exit 0

%postun
exit 0

%files
%doc /usr/share/doc/qux/README
/usr/bin/qux
/usr/lib/systemd/system/qux.service
%dir /etc/qux
%config(noreplace) "/etc/qux/qux config.conf"

%files devel
/usr/include/qux

%changelog
* Wed Mar 01 2023 Quentin <q@example.com> - 0.9~beta2-1
- Beta 2
`,
}
