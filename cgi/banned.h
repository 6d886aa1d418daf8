/* SPDX-License-Identifier: MIT */
/*
 * banned.h: compile-time bans on C library calls that cannot be bounded.
 * Include it after every system header: it replaces the names with macros
 * that fail to compile. Use snprintf, memcpy with a checked length, or the
 * helpers in util.h instead.
 */
#ifndef PYEXEC_BANNED_H
#define PYEXEC_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef gets
#define gets(x) BANNED(gets)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef atoi
#define atoi(x) BANNED(atoi)
#undef atol
#define atol(x) BANNED(atol)

#endif
