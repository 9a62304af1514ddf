#ifndef CARE_AGENT_CZLIB_SHIM_H
#define CARE_AGENT_CZLIB_SHIM_H
#include <zlib.h>
/* deflateInit2/inflateInit2 are macros Swift cannot import. */
static inline int care_deflate_init2(z_streamp s, int level, int windowBits, int memLevel) {
    return deflateInit2(s, level, Z_DEFLATED, windowBits, memLevel, Z_DEFAULT_STRATEGY);
}
static inline int care_inflate_init2(z_streamp s, int windowBits) {
    return inflateInit2(s, windowBits);
}
#endif
