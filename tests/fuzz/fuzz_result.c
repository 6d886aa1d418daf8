/* SPDX-License-Identifier: MIT */
/*
 * fuzz_result.c: libFuzzer harness for the broker's reading of the result
 * pipe (rec_parse, rec_scan) and the classification of a run from it
 * (spawn.c, included whole to reach its static functions). The input is an
 * exit status, a read size and the bytes the pipe carried. Checked: the
 * buffer always has room for the next read; reading in pieces keeps the
 * same final record as reading all at once; the outcome is one the exit
 * status allows; every text of the result is bounded and terminated.
 */
#include "../../sandbox/spawn.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the harness never calls (process start-up, the job's hand-off),
 * and the system call names (libseccomp's table, not under test). */
int fds_setup(int out_fd, int res_fd, int null_fd, int job_fd, int trace)
{
	(void)out_fd, (void)res_fd, (void)null_fd, (void)job_fd, (void)trace;
	abort();
}

int handoff_send(int fd, const struct sb_job *job, const struct sb_limits *lim,
		 const uint8_t *key)
{
	(void)fd, (void)job, (void)lim, (void)key;
	abort();
}

int seccomp_prepare(char *err, size_t errlen)
{
	(void)err, (void)errlen;
	abort();
}

void seccomp_name(int nr, uint32_t arch, char *buf, size_t len)
{
	snprintf(buf, len, "%d/%u", nr, arch);
}

static struct run r;
static struct rec_store whole;

/* The run's key: the seeds' own records carry it ("fuzzkey-16-bytes"),
 * their forgeries zeros or another. */
static const uint8_t key[REC_KEY_LEN] = "fuzzkey-16-bytes";

/* Feeds the stream as reads of at most step bytes, as read_result does. */
static void feed(const char *s, size_t n, size_t step)
{
	while (n > 0) {
		size_t room = sizeof(r.res) - r.res_len;
		size_t k = n < step ? n : step;

		if (room == 0)
			abort();	/* the pipe would no longer be drained */
		if (k > room)
			k = room;
		memcpy(r.res + r.res_len, s, k);
		r.res_len += k;
		take_result(&r, 0);
		s += k;
		n -= k;
	}
	take_result(&r, 1);
	if (r.res_len != 0)
		abort();	/* at the end nothing is left */
}

static void same_final(const struct rec_view *a, const struct rec_view *b)
{
	if (a->have_final != b->have_final || a->have_ready != b->have_ready)
		abort();
	if (!a->have_final)
		return;
	if (a->final.kind != b->final.kind ||
	    a->final.type_len != b->final.type_len ||
	    a->final.msg_len != b->final.msg_len ||
	    memcmp(a->type, b->type, a->final.type_len) != 0 ||
	    memcmp(a->msg, b->msg, a->final.msg_len) != 0)
		abort();
}

/* The outcome must be one the exit status allows. */
static void check(const struct sb_result *res, int status)
{
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	if ((unsigned)res->outcome > SB_CANCELLED ||
	    memchr(res->error_type, 0, sizeof(res->error_type)) == NULL)
		abort();
	if (res->error && strnlen(res->error, RESULT_MESSAGE_MAX + 600) >
	    RESULT_MESSAGE_MAX + 512)
		abort();
	if (res->outcome == SB_OK && code != CHILD_EXIT_OK)
		abort();
	if (res->outcome == SB_SECURITY && code != CHILD_EXIT_TRAPPED &&
	    code != CHILD_EXIT_REFUSED && !(WIFSIGNALED(status) &&
					    WTERMSIG(status) == SIGSYS))
		abort();
	if (res->exec_ms < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct sb_limits lim = { 1000, 1000, 64, 1024 };
	struct sb_result res;
	size_t step;
	int status;

	if (size < 2)
		return 0;
	/* byte 0: an exit code 0-5 or a signal; byte 1: the read size */
	status = data[0] < 0xC0 ? (data[0] % 6) << 8 : data[0] & 0x3F;
	step = 1 + (size_t)data[1] * 97;
	data += 2;
	size -= 2;

	memset(&r, 0, sizeof(r));
	memset(&whole, 0, sizeof(whole));
	memcpy(r.rec.v.key, key, REC_KEY_LEN);
	memcpy(whole.v.key, key, REC_KEY_LEN);
	feed((const char *)data, size, step);
	rec_scan((const char *)data, size, 1, &whole);
	same_final(&r.rec.v, &whole.v);

	r.exited = 1;
	r.status = status;
	r.start_ns = 1;
	r.end_ns = r.rec.v.have_ready ? r.rec.v.ready_ns + 1000 : 2;
	memset(&res, 0, sizeof(res));
	classify(&r, &lim, &res);
	check(&res, status);
	sb_result_release(&res);
	return 0;
}
