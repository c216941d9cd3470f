# SPDX-License-Identifier: MIT
#
# dotproxyd: plain DNS in (UDP/TCP 53), DNS-over-TLS out (RFC 7858).
#
#   docker build -t dotproxyd .
#   docker run -d --name dotproxyd -p 127.0.0.1:53:53/udp -p 127.0.0.1:53:53/tcp dotproxyd
#   dig @127.0.0.1 example.com
#
# Arguments after the image name replace CMD, e.g.
#   docker run dotproxyd --listen 0.0.0.0@53 --upstream 9.9.9.9@853#dns.quad9.net
# See docs/deployment.md and dotproxyd(8).

############################################################################ build
FROM debian:bookworm-slim AS build

# Check (libcheck) is only needed for the test suite, which this build turns off.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        meson ninja-build gcc libc6-dev pkg-config libgnutls28-dev \
        libinih-dev libmicrohttpd-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# --libdir=lib: without dpkg-dev, meson cannot ask for the multiarch triplet and falls
# back to lib64, which Debian's dynamic loader does not search; /usr/lib it always does.
RUN meson setup /build /src \
        --buildtype=release --prefix=/usr --libdir=lib -Dtests=false -Dexamples=false \
 && ninja -C /build \
 && meson install -C /build --destdir /stage --no-rebuild

# Pick out what the daemon needs at run time: the binary and the shared object (with
# its soname link).  Headers, the .pc file and the unversioned .so stay behind.
RUN mkdir -p /rootfs/usr/sbin /rootfs/usr/libexec/dotproxyd \
 && cp -a /stage/usr/sbin/dotproxyd /rootfs/usr/sbin/ \
 && cd /stage \
 && find usr/lib -name 'libdotproxy.so.*' -exec cp -a --parents {} /rootfs/ \; \
 && install -m 0755 /src/deploy/docker/dns-probe /rootfs/usr/libexec/dotproxyd/dns-probe

########################################################################## runtime
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="dotproxyd" \
      org.opencontainers.image.description="Plain DNS to DNS-over-TLS forwarding proxy" \
      org.opencontainers.image.licenses="MIT"

COPY --from=build /rootfs/ /

# Run time needs GnuTLS and the trust store; no compiler, no DNS tools.
#
# Port 53 is privileged and the daemon runs as uid 10053, so the binary carries the
# file capability cap_net_bind_service (+ep).  It is set here, not in the build stage,
# because COPY --from does not reliably carry the security.capability xattr across
# stages (it depends on the builder and its version); libcap2-bin is installed only
# for the one setcap call and purged in the same layer, so it is not in the image.
# Consequence for `docker run`: keep NET_BIND_SERVICE in the bounding set (it is in
# Docker's default set; with --cap-drop ALL add --cap-add NET_BIND_SERVICE), otherwise
# the kernel refuses to exec a binary whose file capability it cannot grant.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libgnutls30 libinih1 libmicrohttpd12 ca-certificates libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/sbin/dotproxyd \
 && setcap -v cap_net_bind_service=+ep /usr/sbin/dotproxyd \
 && DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove libcap2-bin \
 && rm -rf /var/lib/apt/lists/* \
 && ldconfig \
 && groupadd --system --gid 10053 dotproxy \
 && useradd --system --uid 10053 --gid dotproxy --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin dotproxy \
 && /usr/sbin/dotproxyd --version

# Nothing in the image is writable by or owned by this user; the daemon writes no files
# (logs go to stderr), so the container also runs with --read-only.
USER dotproxy:dotproxy

EXPOSE 53/udp 53/tcp

# A real DNS exchange with the proxy (see deploy/docker/dns-probe): healthy only if it
# answers NOERROR/NXDOMAIN in time, so a proxy cut off from every upstream (SERVFAIL)
# is unhealthy.  Set DOTPROXY_PROBE_PORT/ADDR when you change --listen.  When
# `--metrics ADDR@PORT` exists, switch to its GET /health (200 ready, 503 not).
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
    CMD ["/usr/libexec/dotproxyd/dns-probe"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/sbin/dotproxyd"]
# Upstreams default to Cloudflare (1.0.0.1 and 1.1.1.1, cloudflare-dns.com).
# Later options plug in here: --metrics 0.0.0.0@9153 (and EXPOSE 9153/tcp),
# -c /etc/dotproxyd/dotproxyd.conf (mount it read-only), --allow CIDR.
# --user is not needed: the image already starts as dotproxy.
CMD ["--listen", "0.0.0.0@53"]
