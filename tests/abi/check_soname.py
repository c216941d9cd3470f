#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shared library carries the expected DT_SONAME.

Usage: check_soname.py LIBRARY EXPECTED_SONAME [READELF]

The soname is what programs record at link time; it changes only with a
deliberate ABI break (a new lib_soversion in the top meson.build and a new
expected value here).
"""
import re
import subprocess
import sys


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    lib, expected = sys.argv[1], sys.argv[2]
    readelf = sys.argv[3] if len(sys.argv) == 4 else 'readelf'
    out = subprocess.run([readelf, '-d', lib], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    sonames = re.findall(r'\(SONAME\)\s+Library soname: \[([^\]]*)\]', out)
    if sonames != [expected]:
        print(f'{lib}: SONAME {sonames or "absent"}, expected [{expected!r}]',
              file=sys.stderr)
        return 1
    print(f'ok  SONAME {expected}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
