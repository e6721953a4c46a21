/*
 * md_slot: which Redis Cluster hash slot a key lives in.
 *
 * Redis Cluster maps every key to one of 16384 slots: CRC16 (the XMODEM
 * variant, polynomial 0x1021, initial value 0) of the key, modulo 16384.
 * When the key holds a hash tag, a '{' followed later by a '}' with at
 * least one byte between them, only the bytes between the first '{' and
 * the first '}' after it are hashed, so "{user1}.a" and "{user1}.b" share
 * a slot. Written by hand: no Debian package carries a cluster client for
 * C, and this is twenty lines that Redis's own tests pin down.
 */
#ifndef MD_SLOT_H
#define MD_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define MD_SLOT_COUNT 16384

/* CRC16-XMODEM of len bytes. */
uint16_t md_crc16(const char *buf, size_t len);

/* The cluster slot of key (len bytes), hash tags honoured. */
uint16_t md_slot_of(const char *key, size_t len);

#endif
