/* SPDX-License-Identifier: MIT */
/*
 * slots.h: the host-wide cap on sandboxes running at once. A slot is a
 * one-byte write lock in the lock file PYEXEC_RUN_DIR/slots (host-local
 * state: several hosts may share one database, never their slots); the kernel drops
 * it when the holding process exits, however it exits, so a crashed broker
 * cannot leak one. An identity's own slots are locks too, in another
 * region of the same file, so that one client (asleep in every sandbox it
 * got) cannot hold the whole host.
 */
#ifndef PYEXEC_SLOTS_H
#define PYEXEC_SLOTS_H

/* The directory of host-local state: PYEXEC_RUN_DIR; else, not as root,
 * $XDG_RUNTIME_DIR/pyexec when XDG_RUNTIME_DIR is set; else /run/pyexec. */
const char *slots_run_dir(void);

/*
 * Takes one of max slots, waiting up to wait_ms. Returns the lock file's
 * descriptor (keep it open while running; closing it frees the slot), -1
 * when every slot stayed taken, or -2 when the lock file cannot be used.
 */
int slots_acquire(const char *run_dir, long max, long wait_ms);

/* slots_acquire's answer when the identity holds per_identity already. */
#define SLOTS_IDENTITY_FULL (-3)
/* ... and when the web server cancelled the request while it waited. */
#define SLOTS_CANCELLED (-4)

/*
 * The same, and also one of per_identity slots of identity key (in the
 * same file, at an offset derived from the key: a 40-bit hash, so two
 * identities share their slots only by a collision no client can aim
 * at). The directory is made (mode 0770) when missing, not its parents.
 * Waits up to wait_ms for both; returns the descriptor, -1 (the
 * host is full), -2 (the lock file), or SLOTS_IDENTITY_FULL.
 */
int slots_acquire_for(const char *run_dir, long max, const char *key,
		      long per_identity, long wait_ms);

#endif
