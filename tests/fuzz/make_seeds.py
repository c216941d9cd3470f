#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the hand-made seed inputs into corpus/<target>/, each named by the
sha1 of its content (re-running is idempotent). Fuzzer finds are added by
run-fuzz.sh -merge or by hand, named the same way."""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def save(target, data):
    d = os.path.join(HERE, 'corpus', target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


def labels(dotted):
    out = b''
    for part in dotted.split('.'):
        if part:
            out += bytes([len(part)]) + part.encode()
    return out


def name(dotted):
    return labels(dotted) + b'\0'


def ptr(off):
    return struct.pack('>H', 0xC000 | off)


def hdr(id_, flags, qd, an, ns, ar):
    return struct.pack('>HHHHHH', id_, flags, qd, an, ns, ar)


def rr(owner, type_, rdata, cls=1, ttl=300):
    return owner + struct.pack('>HHIH', type_, cls, ttl, len(rdata)) + rdata


def opt(udp=1232, flags=0, options=b'', ext=0, ver=0):
    return b'\0' + struct.pack('>HHBBHH', 41, udp, ext, ver, flags, len(options)) + options


def q(qname, qtype=1, qcls=1):
    return name(qname) + struct.pack('>HH', qtype, qcls)


def dns_seeds():
    s = []
    s.append(hdr(0x1234, 0x0100, 1, 0, 0, 0) + q('www.example.com'))
    s.append(hdr(0x1234, 0x0110, 1, 0, 0, 1) + q('Example.ORG', 28) + opt(4096, 0x8000))
    s.append(hdr(1, 0, 1, 0, 0, 1) + q('a.b', 16) +
             opt(1400, 0, struct.pack('>HH', 10, 8) + b'abcdefgh' + struct.pack('>HH', 12, 3) + b'\0\0\0'))
    s.append(hdr(7, 0x8182, 0, 0, 0, 0))
    s.append(hdr(7, 0, 1, 0, 0, 0) + q(''))
    # an answer: CNAME (compressed), two A, SOA in authority, glue, OPT
    m = hdr(0x4321, 0x8180, 1, 3, 1, 2) + q('www.example.com')
    web = len(m) + 12
    m += rr(ptr(12), 5, labels('web') + ptr(16))
    m += rr(ptr(web), 1, bytes([192, 0, 2, 1]))
    m += rr(ptr(web), 1, bytes([192, 0, 2, 2]))
    soa_rd = len(m) + 12
    m += rr(ptr(16), 6, labels('ns1') + ptr(16) + labels('hostmaster') + ptr(16) +
            struct.pack('>IIIII', 1, 2, 3, 4, 5))
    m += rr(ptr(soa_rd), 1, bytes([192, 0, 2, 53]))
    answer = m + opt(1232, 0x8000)
    s.append(answer)
    s.append(m[:6] + b'\0\3' + m[8:10] + b'\0\1' + m[12:])  # no OPT, ns dropped count
    mx = hdr(9, 0x8180, 1, 2, 0, 0) + q('example.net', 15)
    mx += rr(ptr(12), 15, struct.pack('>H', 10) + labels('mail') + ptr(12))
    mx += rr(ptr(12), 15, struct.pack('>H', 20) + name('mx2.other.test'))
    s.append(mx)
    txt = hdr(10, 0x8180, 1, 1, 0, 1) + q('t.example', 16) + \
        rr(ptr(12), 16, b'\x05hello\x05world') + opt(512)
    s.append(txt)
    big = hdr(11, 0x8180, 1, 40, 0, 0) + q('big.example')
    for i in range(40):
        big += rr(ptr(12), 1, bytes([10, 0, i // 256, i % 256]))
    s.append(big)
    long_name = '.'.join(['a' * 63] * 3 + ['b' * 61])
    s.append(hdr(12, 0, 1, 0, 0, 0) + q(long_name))
    # hostile
    s.append(hdr(1, 0, 1, 0, 0, 0)[:11])
    s.append(hdr(1, 0, 1, 0, 0, 0))
    base = hdr(1, 0x8000, 1, 1, 0, 0) + q('a.b')
    s.append(base + rr(ptr(len(base)), 1, b'\0\0\0\0'))               # self pointer
    s.append(base + rr(labels('x') + ptr(len(base)), 1, b'\0\0\0\0'))   # back to own start
    p = len(base)
    s.append(base + rr(ptr(p + 12), 10, ptr(p)))                      # two-pointer cycle
    s.append(base + rr(ptr(0x3FFF), 1, b'\0\0\0\0'))                  # past the end
    s.append(base + b'\xc0')                                          # half a pointer
    s.append(hdr(1, 0, 1, 0, 0, 0) + ptr(4) + b'\0\1\0\1')             # into header
    s.append(answer[:6] + b'\0\4' + answer[8:])                        # counts: more
    s.append(answer[:10] + b'\0\1' + answer[12:])                      # counts: fewer
    s.append(answer + b'\0')                                           # trailing garbage
    s.append(m[:-6] + b'\0\5' + m[-4:])                                # rdlength past end
    s.append(hdr(1, 0, 1, 0, 0, 0) + b'\x40' + b'x' * 64 + b'\0\0\1\0\1')   # label 64
    s.append(hdr(1, 0, 1, 0, 0, 0) + b'\x81x\0\0\1\0\1')               # binary label
    s.append(hdr(1, 0, 1, 0, 0, 0) + q('.'.join(['a' * 63] * 4)))      # 257 octets
    s.append(hdr(1, 0, 1, 0, 0, 2) + q('a.b') + opt() + opt())         # two OPTs
    s.append(hdr(1, 0x8000, 1, 1, 0, 0) + q('a.b') + opt())            # OPT in answer
    s.append(hdr(1, 0x8000, 1, 0, 1, 0) + q('a.b') + opt())            # OPT in authority
    s.append(hdr(1, 0, 1, 0, 0, 1) + q('a.b') + rr(name('a'), 41, b'', 1232))  # owner
    s.append(hdr(1, 0, 1, 0, 0, 1) + q('a.b') + opt(options=b'\0\1\0\9'))      # option
    s.append(base + rr(ptr(12), 5, labels('c') + b'\0\0'))             # CNAME extra
    chain = hdr(1, 0x8000, 1, 2, 0, 0) + q('a.b')
    rd = b'\0'
    start = len(chain) + 1 + 10
    prev = start
    for i in range(150):
        here = start + len(rd)
        rd += ptr(prev)
        prev = here
    chain += rr(b'\0', 10, rd) + rr(ptr(prev), 1, b'\0\0\0\0')
    s.append(chain)                                                     # long chain
    s.append(hdr(1, 0x0100, 1, 0, 0, 0) + b'\x03www\x07exa')           # cut question
    s.append(hdr(1, 0x0100, 2, 0, 0, 0) + q('a.b') + ptr(12) + b'\0\1\0\1')  # 2 q
    for x in s:
        save('dns_parse', x)
        save('dns_iter', x)  # the record iterator reads the same messages


def frame_stream(msgs):
    return b''.join(struct.pack('>H', len(x)) + x for x in msgs)


def chunked(sel, stream, sizes):
    """sel picks the buffer size; sizes are the read sizes (1..256)."""
    out = struct.pack('>H', sel)
    i = 0
    k = 0
    while i < len(stream):
        n = sizes[k % len(sizes)]
        k += 1
        out += bytes([n - 1]) + stream[i:i + n]
        i += n
    return out


def frame_seeds():
    s = []
    one = frame_stream([b'q' * 30])
    s.append(chunked(500, one, [1, 256]))            # prefix split after 1 octet
    many = frame_stream([bytes([i]) * (i * 3 + 1) for i in range(20)])
    s.append(chunked(697, many, [256]))              # many per read
    s.append(chunked(100, many, [1]))                # byte at a time
    s.append(chunked(64, many, [7, 3, 200]))
    s.append(chunked(500, frame_stream([b'abc']) + b'\0\0' + frame_stream([b'x']), [256]))
    s.append(chunked(0x8000, frame_stream([b'\x55' * 3000]), [256]))  # 65537 buffer
    s.append(chunked(0x8000, b'\xff\xff' + b'z' * 1200, [256]))        # 65535 prefix
    s.append(chunked(10, frame_stream([b'0123456789']), [3]))           # too big for cap 13
    s.append(chunked(9, frame_stream([b'0123456789']), [256]))          # cap 12: fits exactly
    s.append(chunked(0, frame_stream([b'a']), [1]))                     # cap 3
    s.append(b'\0\0')
    s.append(b'\x01\x00\x00\x00')
    for x in s:
        save('frame', x)


def endpoint_seeds():
    specs = [
        '127.0.0.1', '127.0.0.1@853', '1.1.1.1@853#cloudflare-dns.com', '::1', '[::1]@8053',
        '[2001:db8::1]@853#dns.example', '2001:db8::1', '::ffff:192.0.2.1', '9.9.9.9#dns.quad9.net',
        '0.0.0.0@0', '1.2.3.4@65535', '1.2.3.4@65536', '1.2.3.4@', '1.2.3.4@-1', '1.2.3.4@0853',
        '1.2.3.4#', '1.2.3.4#-bad.example', '1.2.3.4#a..b', '1.2.3.4#' + 'a' * 64 + '.com',
        '1.2.3.4#' + '.'.join(['a' * 63] * 4), '256.1.1.1', '1.2.3', '[::1', '::1]@53',
        '[1.2.3.4]@53', 'fe80::1%eth0', '[::1]@53#x', '', '@853', '#name', 'localhost',
        '1.2.3.4 @853', '1.2.3.4@85 3', '[::]@853#a.b', '1.2.3.4#under_score.example',
        '1.2.3.4@853@853', '1.2.3.4#a#b', '[]@53', '1:2:3:4:5:6:7:8:9',
    ]
    for x in specs:
        save('endpoint', x.encode())
    save('endpoint', b'1.2.3.4\x00#trailing-after-nul')


def edns_seeds():
    """One control octet (see fuzz_edns.c: bit 0 query/answer, then the
    client's EDNS, keep-ecs), then a message; above all OPTs that are not
    last, with records behind them that point at each other."""
    s = []
    m = hdr(0x1234, 0x81a0, 1, 1, 0, 5) + q('www.example.com')
    m += rr(ptr(12), 1, bytes([192, 0, 2, 1]))
    m += opt(1232, 0x8000, struct.pack('>HH', 12, 6) + b'\0' * 6 + struct.pack('>HH', 3, 2) + b'ns')
    x = len(m)
    m += rr(labels('ns1') + ptr(16), 1, bytes([192, 0, 2, 2]))
    y = len(m)
    m += rr(labels('a') + ptr(x), 1, bytes([192, 0, 2, 3]))
    z = len(m)
    m += rr(labels('b') + ptr(16), 5, ptr(y))
    m += rr(ptr(z), 15, struct.pack('>H', 10) + labels('mx') + ptr(y))
    srv = len(m)
    m += rr(ptr(y), 33, struct.pack('>HHH', 0, 5, 853) + labels('dot') + ptr(x))
    m = m[:10] + struct.pack('>H', 6) + m[12:]
    for ctl in (0x00, 0x02, 0x06, 0x0a, 0x01, 0x03, 0x07):
        s.append(bytes([ctl]) + m)
    # the OPT last, as usual
    plain = hdr(7, 0x8180, 1, 1, 0, 1) + q('a.example') + rr(ptr(12), 1, b'\1\2\3\4') + opt(4096)
    for ctl in (0x00, 0x02, 0x01):
        s.append(bytes([ctl]) + plain)
    # a pointer behind the OPT aiming at its root octet
    bad = hdr(1, 0x8180, 1, 0, 0, 2) + q('a.b')
    o = len(bad)
    bad += opt() + rr(ptr(o), 1, b'\0\0\0\0')
    s.append(b'\x02' + bad)
    # SOA in authority behind... an OPT cannot be there; SOA in additional
    soa = hdr(2, 0x8183, 1, 0, 0, 2) + q('nx.example') + opt(1232)
    soa += rr(ptr(15), 6, labels('ns') + ptr(15) + labels('host') + ptr(15) + struct.pack('>IIIII', 1, 2, 3, 4, 5))
    s.append(b'\x00' + soa)
    s.append(b'\x02' + soa)
    for x in s:
        save('edns', x)


def rpz_seeds():
    head = (b'$TTL 300\n$ORIGIN rpz.example.\n'
            b'@ IN SOA ns admin ( 1 3600 600 86400 60 ) ; apex\n  NS ns\n')
    body = [
        b'evil.example CNAME .\n*.evil.example CNAME *.\n',
        b'pass.example CNAME rpz-passthru.\ndrop.example CNAME rpz-drop.\n'
        b'tcp.example CNAME rpz-tcp-only.\n',
        b'host.example 60 A 192.0.2.1\n AAAA 2001:db8::1\n TXT "a \\"q\\"" b\n'
        b'*.ads.example CNAME *.sink.example.\nmx.example MX 10 mail\n',
        b'24.0.2.0.192.rpz-client-ip CNAME .\n128.1.zz.db8.2001.rpz-ip A 10.0.0.1\n'
        b'32.1.2.0.192.rpz-ip CNAME rpz-drop.\nns.x.rpz-nsdname CNAME .\n'
        b'32.1.2.0.192.rpz-nsip CNAME .\n',
        b'bad.example A 999.1.1.1\nx TYPE65000 \\# 2 0a0b\nw\\.e.example CNAME .\n'
        b'( unbalanced\n',
    ]
    for flags in (0, 1, 2, 3):
        for b in body:
            save('rpz', bytes([flags]) + head + b)
    save('rpz', b'\x00$TTL 60\n@ SOA a. b. 1 2 3 4 5\nfeed.example CNAME .\n')


def xfr_seeds():
    z = 'rpz.test'

    def soa(serial, owner=None):
        rd = name('ns.rpz.test') + name('admin.rpz.test') + struct.pack('>IIIII', serial, 3600, 600, 86400, 60)
        return rr(owner or ptr(12), 6, rd, ttl=60)

    def msg(records, qd=True, qtype=252, flags=0x8400):
        body = q(z, qtype) if qd else b''
        return hdr(0x1234, flags, 1 if qd else 0, len(records), 0, 0) + body + b''.join(records)

    def frames(msgs):
        return b''.join(struct.pack('>H', len(m)) + m for m in msgs)

    bad = rr(name('bad.example.rpz.test'), 5, b'\0', ttl=60)
    new = rr(name('new.example.rpz.test'), 5, b'\0', ttl=60)
    loc = rr(labels('local.example') + ptr(12), 1, bytes([192, 0, 2, 55]), ttl=60)
    txt = rr(name('txt.example.rpz.test'), 16, b'\x05hello\x03a"b', ttl=60)
    ns = rr(ptr(12), 2, name('localhost'), ttl=60)
    unk = rr(name('x.example.rpz.test'), 99, b'\x03abc', ttl=60)
    odd = rr(name('y.example.rpz.test'), 4242, b'\x01\x02', ttl=60)
    # AXFR in one message, then the same split over three (questions in the first only).
    save('xfr', b'\x00' + frames([msg([soa(1), ns, bad, loc, txt, unk, odd, soa(1)])]))
    save('xfr', b'\x00' + frames([msg([soa(1), ns]), msg([bad, loc], qd=False),
                                  msg([soa(1)], qd=False)]))
    # IXFR: up to date; two steps of differences; answered with the whole zone.
    save('xfr', b'\x03' + frames([msg([soa(1)], qtype=251)]))
    save('xfr', b'\x03' + frames([msg([soa(3), soa(1), bad, soa(2), new, soa(2), new, soa(3),
                                        bad, soa(3)], qtype=251)]))
    save('xfr', b'\x03' + frames([msg([soa(5), ns, new, soa(5)], qtype=251)]))
    # A deletion of a record not held; an error rcode; a record outside the zone.
    save('xfr', b'\x03' + frames([msg([soa(2), soa(1), new, soa(2), soa(2)], qtype=251)]))
    save('xfr', b'\x00' + frames([msg([], flags=0x8405)]))
    save('xfr', b'\x00' + frames([msg([soa(1), rr(name('evil.example'), 5, b'\0'), soa(1)])]))



def feed_url_seeds():
    # Response headers of a redirect chain, then of the list; a 304; CR, NUL and
    # 8-bit octets in validators; URLs with user information, several '@', a query.
    save('feed_url', b'HTTP/1.1 302 Found\nETag: "r"\nLocation: /l\n\nHTTP/1.1 200 OK\n'
                     b'ETag: "abc"\nLast-Modified: Sat, 05 Dec 2026 10:00:00 GMT\n')
    save('feed_url', b'HTTP/1.1 304 Not Modified\netag:   W/"x y"  \n')
    save('feed_url', b'ETag: "a\rb"\nLast-Modified: \x00x\nETag: "caf\xc3\xa9"\n')
    save('feed_url', b'https://user:pw@lists.example:8443/feed?token=s3cret#f')
    save('feed_url', b'https://a@b@host/x')
    save('feed_url', b'https://lists.example/u@x?')


if __name__ == '__main__':
    feed_url_seeds()
    xfr_seeds()
    rpz_seeds()
    dns_seeds()
    edns_seeds()
    frame_seeds()
    endpoint_seeds()
    sys.exit(0)
