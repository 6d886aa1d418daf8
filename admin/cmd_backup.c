/* SPDX-License-Identifier: MIT */
/*
 * cmd_backup.c: pyexec-admin backup PATH [--force]: a consistent copy of
 * the live database (sql/backup.c) while the CGI keeps writing. The copy
 * is written to a temporary name in PATH's directory and renamed into
 * place, so PATH is never a half-written file; an existing PATH is kept
 * unless --force.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "admin.h"
#include "../cgi/banned.h"

#define PATH_LEN 4096

static int backup_opt(int opt, const char *arg, void *state)
{
	(void)arg;
	if (opt == 'f')
		*(int *)state = 1;
	return 0;
}

/* dir/.name.backup-XXXXXX, made empty (mode 0600: the audit log holds
 * users' code and token hashes). */
static int make_temp(const char *path, char tmp[PATH_LEN])
{
	char d[PATH_LEN], b[PATH_LEN];
	int fd;

	if (snprintf(d, sizeof(d), "%s", path) >= (int)sizeof(d) ||
	    snprintf(b, sizeof(b), "%s", path) >= (int)sizeof(b) ||
	    snprintf(tmp, PATH_LEN, "%s/.%s.backup-XXXXXX", dirname(d),
		     basename(b)) >= PATH_LEN)
		return error("%s: path too long", path);
	fd = mkstemp(tmp);
	if (fd < 0)
		return error("cannot create a file next to %s: %s", path,
			     strerror(errno));
	close(fd);
	return 0;
}

/* Renames tmp to path: over an existing file only when force. */
static int put_in_place(const char *tmp, const char *path, int force)
{
	if (force ? rename(tmp, path) :
	    renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE)) {
		if (errno == EEXIST)
			return error("%s exists (--force to overwrite it)", path);
		return error("cannot rename the copy to %s: %s", path,
			     strerror(errno));
	}
	return 0;
}

/* PATH must not be the database itself, and must not exist unless force. */
static int check_dest(struct admin_ctx *ctx, const char *path, int force)
{
	struct stat a, b;

	if (stat(path, &a) != 0)
		return errno == ENOENT ? 0 : error("%s: %s", path,
						   strerror(errno));
	if (stat(ctx->db_path, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino)
		return error("%s is the database itself", path);
	if (!force)
		return error("%s exists (--force to overwrite it)", path);
	return 0;
}

static int backup_to(struct admin_ctx *ctx, const char *path, int force)
{
	struct store_backup_info info = { 0, 0, 0 };
	char tmp[PATH_LEN];
	struct stat st;

	if (check_dest(ctx, path, force) != 0 || make_temp(path, tmp) != 0)
		return 1;
	if (store_backup(ctx->db, tmp, &info) != STORE_OK) {
		unlink(tmp);
		return db_error(ctx, "cannot back the database up");
	}
	if (put_in_place(tmp, path, force) != 0) {
		unlink(tmp);
		return 1;
	}
	printf("backed up %s to %s: %lld runs, %lld users, %lld settings, "
	       "%lld bytes\n", ctx->db_path, path, (long long)info.runs,
	       (long long)info.users, (long long)info.settings,
	       stat(path, &st) == 0 ? (long long)st.st_size : -1LL);
	return 0;
}

int cmd_backup(int argc, char **argv, struct admin_ctx *ctx)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	int force = 0;

	if (get_options(argc, argv, opts, ctx, backup_opt, &force) != 0)
		return EXIT_USAGE;
	if (argc - optind != 1)
		return usage_error(ctx->usage, argc - optind ? "too many "
				   "arguments" : "missing PATH");
	return backup_to(ctx, argv[optind], force);
}
