/*
 * Included before every source of the addon (binding.gyp): keeps its glibc symbol versions at or
 * below 2.28, Node 24's own floor, whatever glibc builds it. scripts/build/binary.ts checks the result.
 */
#ifndef DRAIN_INIT_GLIBC_COMPAT_H
#define DRAIN_INIT_GLIBC_COMPAT_H

/* strerrorname_np is glibc 2.32: the addon carries its own table (glibc_compat.c). */
#define strerrorname_np drain_init_errno_name
const char *drain_init_errno_name(int error);

/* pthread_sigmask moved into libc.so.6 as version 2.32; the version before it works on every glibc. */
#if defined(__x86_64__)
__asm__(".symver pthread_sigmask,pthread_sigmask@GLIBC_2.2.5");
#elif defined(__aarch64__)
__asm__(".symver pthread_sigmask,pthread_sigmask@GLIBC_2.17");
#endif

#endif
