/*
 * crc32c.h - CRC-32C (Castagnoli), the checksum of every frame the spool writes.  Pure.
 */
#ifndef CRC32C_H
#define CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of data[0..n), continuing from crc (0 to start).  crc32c(0, "123456789", 9)
 * is 0xe3069283. */
uint32_t crc32c(uint32_t crc, const void *data, size_t n);

#endif
