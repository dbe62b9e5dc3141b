/* ptcore_cpu.c - the CPU's own answers the stub needs: CPUID, for where each XSAVE component sits (leaf 0xD). */
#include <cpuid.h>

#include "ptcore_internal.h"

void pt_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t *out)
{
    unsigned int a, b, c, d;

    __cpuid_count(leaf, subleaf, a, b, c, d);
    out[0] = a;
    out[1] = b;
    out[2] = c;
    out[3] = d;
}
