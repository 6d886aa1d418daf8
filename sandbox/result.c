/* SPDX-License-Identifier: MIT */
/*
 * result.c: the record the child writes on the result pipe, and the
 * parent's parser for it. The child side is async-signal-safe (the seccomp
 * trap handler uses it); the parent side treats every byte as hostile,
 * since the program can write on the same descriptor: a record counts only
 * when it carries the run's key (internal.h), which the program never sees.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include "internal.h"
#include "../cgi/limits.h"
#include "../cgi/banned.h"

uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int write_full(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t n = write(fd, c, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		c += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The child's copy of the run's key: C memory that no Python object
 * refers to. Zeros until the job arrives. */
static uint8_t rec_key[REC_KEY_LEN];

void rec_set_key(const uint8_t *key)
{
	memcpy(rec_key, key, REC_KEY_LEN);
}

int rec_new_key(uint8_t *key)
{
	size_t got = 0;

	while (got < REC_KEY_LEN) {
		ssize_t n = getrandom(key + got, REC_KEY_LEN - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	key[0] |= 1;	/* never the zeros of a record written before the job */
	return 0;
}

void rec_write(enum rec_kind kind, uint64_t exec_ns, uint32_t detail,
	       uint32_t extra, const char *type, size_t type_len,
	       const char *msg, size_t msg_len)
{
	struct rec_hdr h;

	if (type_len > RESULT_TYPE_MAX)
		type_len = RESULT_TYPE_MAX;
	if (msg_len > RESULT_MESSAGE_MAX)
		msg_len = RESULT_MESSAGE_MAX;
	memset(&h, 0, sizeof(h));
	h.magic = REC_MAGIC;
	h.kind = kind;
	h.exec_ns = exec_ns;
	h.detail = detail;
	h.extra = extra;
	h.type_len = (uint32_t)type_len;
	h.msg_len = (uint32_t)msg_len;
	memcpy(h.key, rec_key, REC_KEY_LEN);
	(void)write_full(CHILD_RESULT_FD, &h, sizeof(h));
	if (type_len)
		(void)write_full(CHILD_RESULT_FD, type, type_len);
	if (msg_len)
		(void)write_full(CHILD_RESULT_FD, msg, msg_len);
}

void rec_internal(const char *where, const char *what)
{
	char msg[512];
	size_t n = 0, wl = strlen(where), tl = strlen(what);

	if (wl > 200)
		wl = 200;
	if (tl > 300)
		tl = 300;
	memcpy(msg, where, wl);
	n = wl;
	msg[n++] = ':';
	msg[n++] = ' ';
	memcpy(msg + n, what, tl);
	n += tl;
	rec_write(REC_INTERNAL, 0, 0, 0, "InternalError", 13, msg, n);
	_exit(CHILD_EXIT_INTERNAL);
}

/* The record is the sandbox's: it carries the run's key, or it is the
 * keyless report of a failure before the job (and the key) arrived, which
 * can only come before READY, when no code of the program has run. */
static int rec_authentic(const struct rec_hdr *h, const struct rec_view *v)
{
	static const uint8_t none[REC_KEY_LEN];
	unsigned diff = 0;

	for (size_t i = 0; i < REC_KEY_LEN; i++)
		diff |= (unsigned)(h->key[i] ^ v->key[i]);
	if (diff == 0)
		return 1;
	return h->kind == REC_INTERNAL && !v->have_ready &&
	       memcmp(h->key, none, REC_KEY_LEN) == 0;
}

/*
 * Reads records from buf up to the first malformed or foreign one (without
 * the run's key); the last final record (anything but READY) wins. The
 * program cannot write a record the broker believes, and the sandbox
 * writes its own final record just before it exits; the parent still
 * checks the exit status against the record's kind.
 */
size_t rec_parse(const char *buf, size_t len, struct rec_view *v)
{
	size_t off = 0;

	while (len - off >= sizeof(struct rec_hdr)) {
		struct rec_hdr h;
		size_t need;

		memcpy(&h, buf + off, sizeof(h));
		if (h.magic != REC_MAGIC || h.type_len > RESULT_TYPE_MAX ||
		    h.msg_len > RESULT_MESSAGE_MAX)
			break;
		need = sizeof(h) + h.type_len + h.msg_len;
		if (len - off < need || !rec_authentic(&h, v))
			break;
		if (h.kind == REC_READY) {
			if (!v->have_ready) {
				v->have_ready = 1;
				v->ready_ns = mono_ns();
				v->layers = h.detail;
				v->landlock_abi = (int)h.extra;
			}
		} else {
			v->have_final = 1;
			v->final = h;
			v->type = buf + off + sizeof(h);
			v->msg = v->type + h.type_len;
		}
		off += need;
	}
	return off;
}

/* A record could start at buf (len bytes) whose end has not arrived yet;
 * one that is complete there was refused by rec_parse already. */
static int rec_plausible(const char *buf, size_t len)
{
	struct rec_hdr h;

	if (len < sizeof(h))
		return 1;	/* too short to tell yet */
	memcpy(&h, buf, sizeof(h));
	return h.magic == REC_MAGIC && h.type_len <= RESULT_TYPE_MAX &&
	       h.msg_len <= RESULT_MESSAGE_MAX &&
	       len < sizeof(h) + h.type_len + h.msg_len;
}

/* Where the next record could start, past the first byte of buf; the last
 * bytes that could begin the magic are kept unless the stream ended. */
static size_t rec_resync(const char *buf, size_t len, int eof)
{
	const uint32_t magic = REC_MAGIC;
	const char *m;

	if (len <= 1)
		return len;
	m = memmem(buf + 1, len - 1, &magic, sizeof(magic));
	if (m)
		return (size_t)(m - buf);
	if (eof || len < sizeof(magic))
		return len;
	return len - (sizeof(magic) - 1);
}

/* Keeps what rec_parse found in one run of complete records. */
static void rec_merge(struct rec_store *s, const struct rec_view *one)
{
	if (one->have_ready && !s->v.have_ready) {
		s->v.have_ready = 1;
		s->v.ready_ns = one->ready_ns;
		s->v.layers = one->layers;
		s->v.landlock_abi = one->landlock_abi;
	}
	if (!one->have_final)
		return;
	s->v.have_final = 1;
	s->v.final = one->final;
	memcpy(s->text, one->type, one->final.type_len);
	memcpy(s->text + one->final.type_len, one->msg, one->final.msg_len);
	s->v.type = s->text;
	s->v.msg = s->text + one->final.type_len;
}

size_t rec_scan(const char *buf, size_t len, int eof, struct rec_store *s)
{
	size_t off = 0;

	while (off < len) {
		struct rec_view one;

		memset(&one, 0, sizeof(one));
		memcpy(one.key, s->v.key, REC_KEY_LEN);
		one.have_ready = s->v.have_ready;	/* only the first READY */
		off += rec_parse(buf + off, len - off, &one);
		rec_merge(s, &one);
		if (off == len)
			break;
		if (!eof && rec_plausible(buf + off, len - off))
			break;	/* the rest of a record is on its way */
		off += rec_resync(buf + off, len - off, eof);
	}
	return off;
}
