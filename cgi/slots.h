/* SPDX-License-Identifier: MIT */
/*
 * slots.h: the host-wide cap on sandboxes running at once. A slot is a
 * one-byte write lock in a lock file beside the database; the kernel drops
 * it when the holding process exits, however it exits, so a crashed broker
 * cannot leak one.
 */
#ifndef PYEXEC_SLOTS_H
#define PYEXEC_SLOTS_H

/*
 * Takes one of max slots, waiting up to wait_ms. Returns the lock file's
 * descriptor (keep it open while running; closing it frees the slot), -1
 * when every slot stayed taken, or -2 when the lock file cannot be used.
 */
int slots_acquire(const char *db_path, long max, long wait_ms);

#endif
