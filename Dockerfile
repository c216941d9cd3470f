# SPDX-License-Identifier: MIT
#
# dotproxyd: plain DNS in (UDP/TCP 53), DNS-over-TLS out (RFC 7858).
#
#   docker build -t dotproxyd .
#   docker run -d --name dotproxyd -p 127.0.0.1:53:53/udp -p 127.0.0.1:53:53/tcp dotproxyd
#   dig @127.0.0.1 example.com
#
# Arguments after the image name replace CMD (keep --metrics 127.0.0.1@9153 for the
# HEALTHCHECK), e.g.
#   docker run dotproxyd --listen 0.0.0.0@53 --metrics 127.0.0.1@9153 \
#       --upstream 9.9.9.9@853#dns.quad9.net
# With podman, build with --format docker: the OCI format has no HEALTHCHECK.
# See docs/deployment.md and dotproxyd(8).

############################################################################ build
FROM debian:bookworm-slim AS build

# Check (libcheck) is only needed for the test suite, which this build turns off.
# Each RUN that fills apt's caches (index, downloaded packages) clears them itself.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        meson ninja-build gcc libc6-dev pkg-config libgnutls28-dev libcurl4-gnutls-dev \
        libinih-dev libmicrohttpd-dev libfstrm-dev libprotobuf-c-dev protobuf-c-compiler \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .

# --libdir=lib: without dpkg-dev, meson cannot ask for the multiarch triplet and falls
# back to lib64, which Debian's dynamic loader does not search; /usr/lib it always does.
RUN meson setup /build /src \
        --buildtype=release --prefix=/usr --libdir=lib -Dtests=false -Dexamples=false \
        -Ddnstap=enabled -Dcurl=enabled \
 && ninja -C /build \
 && meson install -C /build --destdir /stage --no-rebuild

# Pick out what the daemon needs at run time: the binary and the shared object (with
# its soname link).  Headers, the .pc file and the unversioned .so stay behind.
RUN mkdir -p /rootfs/usr/sbin /rootfs/usr/libexec/dotproxyd \
 && cp -a /stage/usr/sbin/dotproxyd /rootfs/usr/sbin/ \
 && cd /stage \
 && find usr/lib -name 'libdotproxy.so.*' -exec cp -a --parents {} /rootfs/ \; \
 && install -m 0755 /src/deploy/docker/health-probe /rootfs/usr/libexec/dotproxyd/health-probe \
 && install -m 0755 /src/deploy/docker/dns-probe /rootfs/usr/libexec/dotproxyd/dns-probe

########################################################################## runtime
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="dotproxyd" \
      org.opencontainers.image.description="Plain DNS to DNS-over-TLS forwarding proxy" \
      org.opencontainers.image.licenses="MIT"

COPY --from=build /rootfs/ /

# Run time needs GnuTLS, libcurl's GnuTLS flavour (--blocklist-url), libinih (-c config
# file), libmicrohttpd (--metrics), libfstrm and libprotobuf-c (--dnstap) and the trust
# store; no compiler, no DNS or HTTP tools.
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
        libgnutls30 libcurl3-gnutls libinih1 libmicrohttpd12 libfstrm0 libprotobuf-c1 ca-certificates publicsuffix \
        libcap2-bin \
 && setcap cap_net_bind_service=+ep /usr/sbin/dotproxyd \
 && setcap -v cap_net_bind_service=+ep /usr/sbin/dotproxyd \
 && DEBIAN_FRONTEND=noninteractive apt-get purge -y --auto-remove libcap2-bin \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && ldconfig \
 && groupadd --system --gid 10053 dotproxy \
 && useradd --system --uid 10053 --gid dotproxy --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin dotproxy \
 && /usr/sbin/dotproxyd --version

# Nothing in the image is writable by or owned by this user but the state directory
# (--state-dir, the last good copy of each --rpz-primary feed), a volume; logs go to
# stderr, so the container also runs with --read-only.
RUN install -d -m 0750 -o dotproxy -g dotproxy /var/lib/dotproxyd
VOLUME ["/var/lib/dotproxyd"]
USER dotproxy:dotproxy

# 9153 (--metrics) is deliberately not EXPOSEd: the default CMD binds it to the
# container's loopback, where publishing it would reach nothing (see CMD below).
EXPOSE 53/udp 53/tcp

# GET /health on the metrics server (deploy/docker/health-probe; bash's /dev/tcp, as
# the image has no curl): 200 while at least one upstream is usable, 503 while every
# upstream is backing off after failed connects.  It spends no upstream query, but it
# only knows what traffic has taught it: an idle proxy whose upstreams vanished stays
# healthy until a query fails.  The end-to-end alternative sends a real DNS query
# through the listener (NOERROR/NXDOMAIN = healthy, SERVFAIL = not) and needs no
# --metrics:  docker run --health-cmd /usr/libexec/dotproxyd/dns-probe ...
# Set DOTPROXY_HEALTH_PORT (and _ADDR) if you move --metrics; the probe's own 3 s
# limit stays below --timeout so it reports why it failed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/libexec/dotproxyd/health-probe"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/sbin/dotproxyd"]
# Upstreams default to Cloudflare (1.0.0.1 and 1.1.1.1, cloudflare-dns.com).
#
# --metrics 127.0.0.1@9153: the container's own loopback, which the HEALTHCHECK (run
# inside the container) reaches and nothing outside does.  GET /metrics, /api/v1/* and
# the status page need no credentials and show upstreams, traffic and client
# counters, so they are not published by default.  To scrape them, say so on purpose:
#   docker run ... -p 127.0.0.1:9153:9153 dotproxyd --listen 0.0.0.0@53 --metrics 0.0.0.0@9153
# (0.0.0.0 includes loopback, so the HEALTHCHECK keeps working).
#
# Clients: dotproxyd answers only --allow networks, by default loopback and the private
# ranges (RFC 1918, RFC 6598, link-local, fc00::/7).  Containers on a Docker network
# and the host through a published port arrive from the container network (private),
# so the default works; clients elsewhere reaching a published port keep their own
# source address (Docker DNATs, it does not masquerade), so add theirs:
#   docker run ... dotproxyd --listen 0.0.0.0@53 --metrics 127.0.0.1@9153 --allow 203.0.113.0/24
# (--allow replaces the default list: repeat the private ranges you still want).
#
# -c /etc/dotproxyd/dotproxyd.conf: mount a file read-only there and add -c; options
# on the command line win over the file.  --user is not needed: the image already
# starts as dotproxy.
CMD ["--listen", "0.0.0.0@53", "--metrics", "127.0.0.1@9153"]
