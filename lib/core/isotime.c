/* isotime.c - ISO 8601 date-times (isotime.h). */
#include "core/isotime.h"

int64_t m8_days_from_civil(int64_t y, int m, int d)
{
    /* H. Hinnant's days_from_civil */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n decimal digits of s into *out. */
static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* The zone after the time, s[0..n): Z, +-HH, +-HHMM or +-HH:MM; its offset
 * east of UTC in seconds. */
static bool zone(const char *s, size_t n, int *off)
{
    *off = 0;
    if (n == 0)
        return true;
    if (n == 1 && (s[0] == 'Z' || s[0] == 'z'))
        return true;
    if (s[0] != '+' && s[0] != '-')
        return false;
    int oh = 0, om = 0;
    const char *z = s + 1;
    size_t rest = n - 1;
    if (!((rest == 2 && digits(z, 2, &oh)) ||
          (rest == 4 && digits(z, 2, &oh) && digits(z + 2, 2, &om)) ||
          (rest == 5 && digits(z, 2, &oh) && z[2] == ':' && digits(z + 3, 2, &om))) ||
        oh > 23 || om > 59)
        return false;
    *off = (s[0] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    return true;
}

int m8_iso_time_parse(const char *s, size_t n, bool date_only, int64_t *us)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, off = 0;
    if (!s || !us || n < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d))
        return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
        return -1;
    int64_t frac = 0;
    if (n == 10) {
        if (!date_only)
            return -1;
    } else {
        if (n < 16 || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
            s[13] != ':' || !digits(s + 14, 2, &mi) || h > 23 || mi > 59)
            return -1;
        size_t i = 16;
        if (i < n && s[i] == ':') {
            if (i + 3 > n || !digits(s + i + 1, 2, &sec) || sec > 59)
                return -1;
            i += 3;
            if (i < n && (s[i] == '.' || s[i] == ',')) {
                size_t k = 0;
                for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
                    frac = k < 6 ? frac * 10 + (s[i] - '0') : frac;
                if (k == 0 || k > 9)
                    return -1;
                for (; k < 6; k++)
                    frac *= 10;
            }
        }
        if (!zone(s + i, n - i, &off))
            return -1;
    }
    *us = (m8_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off) * 1000000 + frac;
    return 0;
}
