#include "common.h"

int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool hex_decode(const char *hex, size_t n, uint8_t *out)
{
    size_t i;

    if (n % 2)
        return false;
    for (i = 0; i < n; i += 2) {
        int hi = hex_digit(hex[i]), lo = hi >= 0 ? hex_digit(hex[i + 1]) : -1;

        if (lo < 0)
            return false;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

bool stream_name_valid(const char *name)
{
    size_t n = 0;

    if (!name || !name[0] || name[0] == '.')
        return false;
    for (; name[n]; n++) {
        char c = name[n];

        if (n >= STREAM_NAME_MAX_LEN)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}
