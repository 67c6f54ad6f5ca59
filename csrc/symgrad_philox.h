/* Philox4x32-10 (Salmon et al., SC'11): the same bits as symgrad/ops/random.py, for the C and the
 * CUDA runtime alike.  The includer defines SG_PHILOX_FN: the function's qualifiers in its
 * language ("static inline" in C, "__device__ __forceinline__" in CUDA). */
#ifndef SYMGRAD_PHILOX_H
#define SYMGRAD_PHILOX_H

SG_PHILOX_FN void sg_philox4x32(uint32_t c[4], uint32_t k0, uint32_t k1) {
    for (int r = 0; r < 10; r++) {
        const uint64_t p0 = (uint64_t)0xD2511F53u * c[0], p1 = (uint64_t)0xCD9E8D57u * c[2];
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c[1] ^ k0, n1 = (uint32_t)p1;
        const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c[3] ^ k1, n3 = (uint32_t)p0;
        c[0] = n0; c[1] = n1; c[2] = n2; c[3] = n3;
        if (r < 9) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    }
}

#endif
