/* Vectorised byte scans for the compiled request parser (fastserve/_parser.pyx).
 *
 * SSE2 where the compiler offers it (x86-64 always does), else eight bytes at a time
 * with the classic SWAR bit hacks, then byte by byte; every path gives the same answer.
 * The byte classes are hard-coded here: _parser.pyx uses these scans only while
 * fastserve._abnf agrees with them, and judges every byte they stop at by its tables.
 */
#ifndef FASTSERVE_SCAN_H
#define FASTSERVE_SCAN_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define FS_SSE2 1
#endif

/* Index of the first byte of p[0:n] that is a control byte (< 0x20, HTAB included) or
   DEL, n when there is none. Sets *high when a byte >= 0x80 is among p[0:n] scanned so
   far (whole blocks are ORed: they never reach past n, and the caller rescans after a
   hit, so the answer is exact for the bytes it keeps). */
static inline Py_ssize_t fs_find_ctl(const unsigned char *p, Py_ssize_t n,
                                     const unsigned char *base, int *high) {
    Py_ssize_t i = 0;
#ifdef FS_SSE2
    const __m128i bias = _mm_set1_epi8((char)0x80);
    const __m128i lim = _mm_set1_epi8((char)(0x20 ^ 0x80));
    const __m128i del = _mm_set1_epi8(0x7F);
    int hi = 0;
    if (n < 16 && p + n - 16 >= base) {
        /* a short run: the 16 bytes ending at p + n (those before p are earlier bytes
           of the same buffer), the ones before p masked off */
        __m128i x = _mm_loadu_si128((const __m128i *)(p + n - 16));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(x, bias), lim), _mm_cmpeq_epi8(x, del));
        unsigned int m = (unsigned int)_mm_movemask_epi8(bad) >> (16 - n);
        if (((unsigned int)_mm_movemask_epi8(x) >> (16 - n)) != 0) *high = 1;
        if (n == 0) return 0;
        if (m) {
            /* the high bits of bytes after the hit were counted too: rescanned later */
            return __builtin_ctz(m);
        }
        return n;
    }
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(x, bias), lim), _mm_cmpeq_epi8(x, del));
        int m = _mm_movemask_epi8(bad);
        hi |= _mm_movemask_epi8(x);
        if (m) {
            if (hi) *high = 1;
            return i + __builtin_ctz((unsigned int)m);
        }
    }
    if (i < n && n >= 16) {
        /* the last 16 bytes, overlapping what was already scanned */
        __m128i x = _mm_loadu_si128((const __m128i *)(p + n - 16));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(x, bias), lim), _mm_cmpeq_epi8(x, del));
        unsigned int m = (unsigned int)_mm_movemask_epi8(bad) >> (16 - (n - i));
        hi |= _mm_movemask_epi8(x);
        if (hi) *high = 1;
        return m ? i + __builtin_ctz(m) : n;
    }
    if (hi) *high = 1;
#else
    /* eight bytes at a time: "hasless(x, 0x20)" and "haszero(x ^ 0x7F...)" bit hacks */
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t acc = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, d;
        memcpy(&x, p + i, 8);
        d = x ^ (0x7F * ones);
        if ((((x - 0x20 * ones) & ~x) | ((d - ones) & ~d)) & highs) break;
        acc |= x;
    }
    if (acc & highs) *high = 1;
#endif
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (c < 0x20 || c == 0x7F) return i;
        if (c & 0x80) *high = 1;
    }
    return n;
}

/* Index of the first byte of p[0:n] outside 0x21-0x7E (RFC 9112 §3.2 target bytes). */
static inline Py_ssize_t fs_find_nontarget(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
#ifdef FS_SSE2
    const __m128i bias = _mm_set1_epi8((char)0x80);
    const __m128i lim = _mm_set1_epi8((char)(0x21 ^ 0x80));
    const __m128i del = _mm_set1_epi8(0x7F);
    for (; i + 16 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + i));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(x, bias), lim), _mm_cmpeq_epi8(x, del));
        int m = _mm_movemask_epi8(bad) | _mm_movemask_epi8(x);
        if (m) return i + __builtin_ctz((unsigned int)m);
    }
    if (i < n && n >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(p + n - 16));
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(_mm_xor_si128(x, bias), lim), _mm_cmpeq_epi8(x, del));
        unsigned int m = (unsigned int)(_mm_movemask_epi8(bad) | _mm_movemask_epi8(x)) >> (16 - (n - i));
        return m ? i + __builtin_ctz(m) : n;
    }
#endif
    for (; i < n; i++) {
        unsigned char c = p[i];
        if (c < 0x21 || c > 0x7E) break;
    }
    return i;
}

#endif /* FASTSERVE_SCAN_H */
