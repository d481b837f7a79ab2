#!/usr/bin/env python3
"""Turns a file into a C source defining `const unsigned char NAME[]` and `const size_t NAME_len`.

Usage: embed.py INPUT OUTPUT NAME. Used by http/meson.build for the player page
(no xxd dependency; the array keeps a trailing NUL that NAME_len excludes).
"""
import sys


def main():
    src, dst, name = sys.argv[1:4]
    with open(src, 'rb') as f:
        data = f.read()
    lines = []
    for i in range(0, len(data), 16):
        lines.append('    ' + ' '.join('0x%02x,' % b for b in data[i:i + 16]))
    with open(dst, 'w') as f:
        f.write('/* Generated from %s by http/embed.py; do not edit. */\n' % src.split('/')[-1])
        f.write('#include <stddef.h>\n\n')
        f.write('extern const unsigned char %s[];\nextern const size_t %s_len;\n\n' % (name, name))
        f.write('const unsigned char %s[] = {\n' % name)
        f.write('\n'.join(lines) + ('\n' if lines else ''))
        f.write('    0x00,\n};\n')
        f.write('const size_t %s_len = %d;\n' % (name, len(data)))


if __name__ == '__main__':
    main()
