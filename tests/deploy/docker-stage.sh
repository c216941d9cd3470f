#!/bin/bash
# SPDX-License-Identifier: MIT
#
# docker-stage.sh SRCDIR [MESON]
#
# The Dockerfile's build and runtime stages, done without a container engine:
#   1. run the build stage's `meson setup` (options read from the Dockerfile itself, so
#      the two cannot drift), ninja and `meson install --destdir` into a temp dir;
#   2. check the staged tree: /usr/sbin/dotproxyd, libdotproxy.so.N with its soname
#      link, public headers, dotproxy.pc with the right prefix;
#   3. pick the runtime files exactly as the Dockerfile does (binary + libdotproxy.so.*)
#      into a second tree and run `dotproxyd --version` from it, with LD_LIBRARY_PATH
#      pointing only there, checking every other library it needs comes from the
#      system (in the image: libgnutls30 and libc6).
# Exit 0 pass, 1 fail.
set -euo pipefail

src=$(cd "${1:?usage: docker-stage.sh SRCDIR [MESON]}" && pwd)
meson=${2:-meson}
dockerfile=$src/Dockerfile

tmp=$(mktemp -d "${TMPDIR:-/tmp}/docker-stage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# --- 1. the build stage --------------------------------------------------------------
# Join continuation lines, then take the options between `meson setup /build /src`
# and the next `&&`.
opts=$(sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$dockerfile" |
       sed -n 's/.*meson setup \/build \/src \(.*\)/\1/p' | sed 's/&&.*//' | head -1)
opts=$(echo $opts)  # squeeze the continuation-line indentation
[[ -n $opts ]] || fail "no 'meson setup /build /src OPTIONS' in $dockerfile"
for want in --buildtype=release --prefix=/usr --libdir=lib -Dtests=false -Dexamples=false; do
    [[ " $opts " == *" $want "* ]] || fail "Dockerfile meson setup lacks $want (has: $opts)"
done
ok "Dockerfile build stage options: $opts"

# shellcheck disable=SC2086  # options are words, as the shell in RUN splits them
"$meson" setup "$tmp/build" "$src" $opts >"$tmp/setup.log" 2>&1 ||
    { cat "$tmp/setup.log" >&2; fail "meson setup"; }
ninja -C "$tmp/build" >"$tmp/ninja.log" 2>&1 || { tail -50 "$tmp/ninja.log" >&2; fail "ninja"; }
"$meson" install -C "$tmp/build" --destdir "$tmp/stage" --no-rebuild >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install"; }
stage=$tmp/stage
ok "built and staged into a temp destdir"
# -Dtests=false builds nothing for the tests: not the static twin of the library.
internal=$(find "$tmp/build" -name 'libdotproxy_internal*' | head -1)
[[ -z $internal ]] || fail "-Dtests=false still built the test-only ${internal#"$tmp/build/"}"
ok "no test-only static library with -Dtests=false"
unit=$stage/usr/lib/systemd/system/dotproxyd.service
grep -q '^ExecStart=/usr/sbin/dotproxyd ' "$unit" || fail "$unit: ExecStart is not /usr/sbin/dotproxyd"

# --- 2. the staged tree ---------------------------------------------------------------
[[ -x $stage/usr/sbin/dotproxyd && ! -L $stage/usr/sbin/dotproxyd ]] ||
    fail "staged tree has no executable /usr/sbin/dotproxyd"

mapfile -t reals < <(cd "$stage" && find usr/lib* -name 'libdotproxy.so.*.*.*' -type f)
[[ ${#reals[@]} -eq 1 ]] || fail "expected one libdotproxy.so.X.Y.Z, found: ${reals[*]:-none}"
real=$stage/${reals[0]}
libdir=$(dirname "$real")
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname =~ ^libdotproxy\.so\.[0-9]+$ ]] || fail "bad soname '$soname' in ${reals[0]}"
[[ -L $libdir/$soname && $(readlink -f "$libdir/$soname") == "$(readlink -f "$real")" ]] ||
    fail "no $soname link to $(basename "$real") in $libdir"
[[ -L $libdir/libdotproxy.so ]] || fail "no development link libdotproxy.so"
ok "shared object ${reals[0]}, soname $soname"

# The version script must be in force: nothing but dotproxy_* is exported.
stray=$(nm -D --defined-only "$real" | awk '{print $3}' | grep -v '^dotproxy_' | grep -v '^DOTPROXY_' || true)
[[ -z $stray ]] || fail "exported symbols outside the dotproxy_ namespace: $stray"

for h in dotproxy.h error.h config.h dns.h loop.h proxy.h export.h version.h; do
    [[ -f $stage/usr/include/dotproxy/$h ]] || fail "header dotproxy/$h not installed"
done
ok "public headers installed"

pc=$(cd "$stage" && find usr/lib* -name dotproxy.pc | head -1)
[[ -n $pc ]] || fail "dotproxy.pc not installed"
grep -qx 'prefix=/usr' "$stage/$pc" || fail "$pc: prefix is not /usr"
grep -q '^Requires.private:.*gnutls' "$stage/$pc" || fail "$pc: gnutls not in Requires.private"
# pkg-config itself resolves it, as a user of the image's -dev tree would.
if command -v pkg-config >/dev/null; then
    libs=$(PKG_CONFIG_SYSROOT_DIR=$stage PKG_CONFIG_LIBDIR=$stage/$(dirname "$pc") \
           pkg-config --libs dotproxy) || fail "pkg-config cannot read $pc"
    [[ $libs == *-ldotproxy* ]] || fail "pkg-config --libs dotproxy gave '$libs'"
fi
ok "pkg-config file $pc"

# --- 3. the runtime stage -------------------------------------------------------------
# The same selection as the Dockerfile's /rootfs step.
rootfs=$tmp/rootfs
mkdir -p "$rootfs/usr/sbin"
cp -a "$stage/usr/sbin/dotproxyd" "$rootfs/usr/sbin/"
(cd "$stage" && find usr/lib -name 'libdotproxy.so.*' -exec cp -a --parents {} "$rootfs/" \;)
rlibdir=$rootfs/${libdir#"$stage"/}
[[ -e $rlibdir/$soname ]] || fail "runtime selection lost $soname"

# Installed binaries carry no build-tree rpath; the library must come from the rootfs.
if readelf -d "$rootfs/usr/sbin/dotproxyd" | grep -Eq '\((RPATH|RUNPATH)\)'; then
    fail "installed dotproxyd still has an RPATH/RUNPATH"
fi
deps=$(LD_LIBRARY_PATH=$rlibdir ldd "$rootfs/usr/sbin/dotproxyd")
if grep -q 'not found' <<<"$deps"; then fail "unresolved libraries: $deps"; fi
grep -q "libdotproxy.so.* => $rlibdir/" <<<"$deps" ||
    fail "libdotproxy not taken from the runtime tree: $deps"
# Everything else must be what libgnutls30, libcurl3-gnutls (--blocklist-url; with
# what Debian's libcurl links: nghttp2, rtmp, ssh2, psl, LDAP, Kerberos, SASL),
# libinih1 (config file), libmicrohttpd12 (metrics/API), libfstrm0 and
# libprotobuf-c1 (dnstap) and libc6 bring (the runtime stage installs nothing else); a
# new dependency has to be added to the Dockerfile on purpose.
other=$(awk '/=>/ {print $1}' <<<"$deps" |
        grep -Ev '^(libdotproxy|libgnutls|libcurl-gnutls|libnghttp2|librtmp|libssh2|libpsl|libgssapi_krb5|libldap-2\.5|liblber-2\.5|libcrypto|libkrb5|libk5crypto|libcom_err|libkrb5support|libsasl2|libkeyutils|libresolv|libinih|libmicrohttpd|libfstrm|libprotobuf-c|libc|libm|libpthread|libdl|libp11-kit|libidn2|libunistring|libtasn1|libnettle|libhogweed|libgmp|libffi|libzstd|libbrotli(common|enc|dec)?|libz)\.so' || true)
[[ -z $other ]] || fail "dotproxyd needs libraries the runtime image does not install: $other"

out=$(LD_LIBRARY_PATH=$rlibdir "$rootfs/usr/sbin/dotproxyd" --version 2>&1) ||
    fail "staged dotproxyd --version exited $?: $out"
version=$(sed -n "s/^ *version *: *'\([^']*\)'.*/\1/p" "$src/meson.build" | head -1)
[[ -n $version && $out == *"$version"* ]] ||
    fail "staged dotproxyd --version printed '$out', expected it to name version $version"
ok "runtime tree runs: $out"
# The image's CMD and HEALTHCHECK rely on --metrics, and deployments on -c (and
# --dnstap): all are optional at build time (libmicrohttpd, libinih, libfstrm), so
# check they were built in.
out=$(LD_LIBRARY_PATH=$rlibdir "$rootfs/usr/sbin/dotproxyd" --check-config -c /dev/null \
        --listen 0.0.0.0@53 --metrics 127.0.0.1@9153 --log-format json \
        --dnstap unix:/run/dnstap.sock 2>&1) ||
    fail "staged dotproxyd rejects the image's options: $out"
[[ $out == 'configuration OK' ]] || fail "staged dotproxyd --check-config printed '$out'"
ok "runtime tree accepts -c, --metrics, --log-format json and --dnstap"

# The libraries dotproxyd and libdotproxy link directly must come from packages the
# runtime stage installs by name (libc6 is in the base image).  The package that owns
# each library here is asked of dpkg, as Debian's image would resolve it.
if command -v dpkg >/dev/null; then
    runtime_pkgs=$(sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$dockerfile" |
                   awk '/^FROM /{last=""} {last = last "\n" $0} END{print last}' |
                   grep -o 'install -y --no-install-recommends [^&]*' | head -1)
    [[ -n $runtime_pkgs ]] || fail "no apt-get install in the Dockerfile's runtime stage"
    for obj in "$rootfs/usr/sbin/dotproxyd" "$rlibdir/$soname"; do
        for lib in $(readelf -d "$obj" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
            # libc6 (in the base image) ships libm too (the anomaly detectors use it)
            # and the dynamic loader (thread-local storage's __tls_get_addr: dynblock.c).
            [[ $lib == libdotproxy.so.* || $lib == libc.so.* || $lib == libm.so.* ||
               $lib == ld-linux-*.so.* ]] && continue
            path=$(awk -v l="$lib" '$1 == l {print $3}' <<<"$deps")
            [[ -n $path ]] || path=$(ldd "$rlibdir/$soname" | awk -v l="$lib" '$1 == l {print $3}')
            pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
            [[ -n $pkg ]] || fail "no Debian package owns $path ($lib)"
            [[ " $runtime_pkgs " == *" $pkg "* ]] ||
                fail "$lib comes from $pkg, which the runtime stage does not install ($runtime_pkgs)"
            ok "$lib from $pkg, installed by the runtime stage"
        done
    done
fi

bash -n "$src/deploy/docker/dns-probe" || fail "deploy/docker/dns-probe does not parse"
bash -n "$src/deploy/docker/health-probe" || fail "deploy/docker/health-probe does not parse"
echo "docker-stage: all checks passed"
