/*
 * The exec helper: what a new worker process must do between libuv's fork and the worker's exec, which
 * libuv has no hook for. libuv execs this in the new process, with default signal handling and stdio in
 * place; it
 *   - restores the signal mask and the ignored signals drain-init was started with, as tini does for its
 *     child (Node resets both for itself at start-up, and libuv again for every child);
 *   - with a terminal, makes the worker lead a process group that is the terminal's foreground;
 *   - execs the command, searching PATH as glibc's execvp does for libuv, so that the worker starts as it
 *     would without the helper.
 * When that fails it writes the errno name (ENOENT) to fd 3 and exits 127; a successful exec closes fd 3.
 *
 *   exec-helper BLOCKED IGNORED FOREGROUND FILE [ARG...]
 *     BLOCKED, IGNORED  signal sets as the hex words of SigBlk and SigIgn in /proc/<pid>/status
 *     FOREGROUND        1 to take the terminal's foreground (stdin's), 0 not to
 *
 * Static and free of any C library, for x86-64 and arm64: a few KB that the addon carries and runs from
 * memory (a memfd), so that it needs no file system.
 */
#include <asm/errno.h>
#include <asm/ioctls.h>
#include <asm/unistd.h>

#define ERROR_FD 3
#define STDIN_FD 0
#define STDERR_FD 2
#define SIGKILL 9
#define SIGSTOP 19
#define SIGTTOU 22
#define MAX_SIGNAL 64
#define SIG_BLOCK 0
#define SIG_SETMASK 2
#define SIG_IGN 1UL
#define F_SETFD 2
#define FD_CLOEXEC 1
#define NAME_MAX 255
#define PATH_MAX 4096
/* glibc's defaults: confstr(_CS_PATH) when PATH is unset, and _PATH_BSHELL for scripts with no #! line. */
#define DEFAULT_PATH "/bin:/usr/bin"
#define SHELL "/bin/sh"

typedef unsigned long sigset_word; /* the kernel's sigset_t on both architectures: 64 signals */

/* The kernel's struct sigaction; sa_restorer only on x86-64, where it is zero like the mask after it. */
struct kernel_sigaction {
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  sigset_word mask;
};

/* A system call: the result, or -errno. */
static long sys(long number, long a, long b, long c, long d) {
#if defined(__x86_64__)
  long result;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return result;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = number;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
#else
#error "the exec helper supports x86-64 and arm64"
#endif
}

static unsigned long length(const char *text) {
  unsigned long n = 0;
  while (text[n] != '\0') n++;
  return n;
}

static void write_text(int fd, const char *text) { sys(__NR_write, fd, (long)text, (long)length(text), 0); }

static const struct {
  int code;
  const char *name;
} ERRNO_NAMES[] = {
    {EPERM, "EPERM"},   {ENOENT, "ENOENT"},   {ESRCH, "ESRCH"},     {EIO, "EIO"},         {ENXIO, "ENXIO"},
    {E2BIG, "E2BIG"},   {ENOEXEC, "ENOEXEC"}, {EBADF, "EBADF"},     {ENOMEM, "ENOMEM"},   {EACCES, "EACCES"},
    {EFAULT, "EFAULT"}, {ENOTDIR, "ENOTDIR"}, {EISDIR, "EISDIR"},   {EINVAL, "EINVAL"},   {ENFILE, "ENFILE"},
    {EMFILE, "EMFILE"}, {ENOTTY, "ENOTTY"},   {ETXTBSY, "ETXTBSY"}, {ELOOP, "ELOOP"},     {ELIBBAD, "ELIBBAD"},
    {ENAMETOOLONG, "ENAMETOOLONG"},
};

static const char *errno_name(int code) {
  for (unsigned long i = 0; i < sizeof ERRNO_NAMES / sizeof ERRNO_NAMES[0]; i++) {
    if (ERRNO_NAMES[i].code == code) return ERRNO_NAMES[i].name;
  }
  return "EUNKNOWN";
}

static void __attribute__((noreturn)) fail(int code) {
  write_text(ERROR_FD, errno_name(code));
  sys(__NR_exit_group, 127, 0, 0, 0);
  __builtin_unreachable();
}

/* A SigBlk or SigIgn word: 1 to 16 hex digits. */
static int parse_set(const char *text, sigset_word *set) {
  sigset_word value = 0;
  unsigned long digits = 0;
  for (; text[digits] != '\0'; digits++) {
    char c = text[digits];
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0 || digits == 16) return -1;
    value = value << 4 | (sigset_word)digit;
  }
  *set = value;
  return digits == 0 ? -1 : 0;
}

static void ignore_signals(sigset_word ignored) {
  struct kernel_sigaction action = {SIG_IGN, 0, 0, 0};
  for (int signo = 1; signo <= MAX_SIGNAL; signo++) {
    if (signo == SIGKILL || signo == SIGSTOP || !(ignored >> (signo - 1) & 1)) continue;
    sys(__NR_rt_sigaction, signo, (long)&action, 0, sizeof(sigset_word));
  }
}

/*
 * Leads a new process group and makes it the foreground of stdin's terminal, as tini's child does: a
 * process outside the foreground group gets SIGTTOU for that unless it blocks it. ENOTTY and ENXIO: the
 * terminal went away since drain-init looked, and the worker runs as without one.
 */
static int take_foreground(void) {
  long result = sys(__NR_setpgid, 0, 0, 0, 0);
  if (result < 0) return (int)-result;
  sigset_word ttou = 1UL << (SIGTTOU - 1);
  sys(__NR_rt_sigprocmask, SIG_BLOCK, (long)&ttou, 0, sizeof ttou);
  int group = (int)sys(__NR_getpid, 0, 0, 0, 0);
  result = sys(__NR_ioctl, STDIN_FD, TIOCSPGRP, (long)&group, 0);
  if (result < 0 && result != -ENOTTY && result != -ENXIO) {
    write_text(STDERR_FD, "drain-init: the worker does not get the terminal: tcsetpgrp: ");
    write_text(STDERR_FD, errno_name((int)-result));
    write_text(STDERR_FD, "\n");
  }
  return 0;
}

/* execve, and for a file the kernel cannot run (ENOEXEC: a script without #!) /bin/sh with it. */
static int exec_file(const char *path, char **args, char **env) {
  int error = (int)-sys(__NR_execve, (long)path, (long)args, (long)env, 0);
  if (error != ENOEXEC) return error;
  unsigned long count = 0;
  while (args[count] != 0) count++;
  char *script_args[count + 2];
  script_args[0] = SHELL;
  script_args[1] = (char *)path;
  for (unsigned long i = 1; i <= count; i++) script_args[i + 1] = args[i];
  if (count == 0) script_args[2] = 0;
  return (int)-sys(__NR_execve, (long)SHELL, (long)script_args, (long)env, 0);
}

/* glibc's execvp: a name with a slash is run as it is; otherwise each PATH entry is tried in turn. */
static int exec_searching(const char *file, char **args, char **env) {
  if (file[0] == '\0') return ENOENT;
  for (const char *c = file; *c != '\0'; c++) {
    if (*c == '/') return exec_file(file, args, env);
  }
  unsigned long file_length = length(file);
  if (file_length > NAME_MAX) return ENAMETOOLONG;
  const char *path = DEFAULT_PATH;
  for (char **entry = env; *entry != 0; entry++) {
    const char *e = *entry;
    if (e[0] == 'P' && e[1] == 'A' && e[2] == 'T' && e[3] == 'H' && e[4] == '=') path = e + 5;
  }
  char candidate[PATH_MAX + NAME_MAX + 2];
  int denied = 0;
  for (const char *p = path;;) {
    const char *end = p;
    while (*end != '\0' && *end != ':') end++;
    unsigned long dir_length = (unsigned long)(end - p);
    if (dir_length < PATH_MAX) {
      for (unsigned long i = 0; i < dir_length; i++) candidate[i] = p[i];
      unsigned long at = dir_length;
      if (dir_length > 0) candidate[at++] = '/';
      for (unsigned long i = 0; i <= file_length; i++) candidate[at + i] = file[i];
      int error = exec_file(candidate, args, env);
      switch (error) {
        case EACCES:
          denied = 1;
          break;
        case ENOENT:
        case ESTALE:
        case ENOTDIR:
        case ENODEV:
        case ETIMEDOUT:
          break;
        default:
          return error;
      }
    }
    if (*end == '\0') break;
    p = end + 1;
  }
  return denied ? EACCES : ENOENT;
}

/* Called from _start with the initial stack: argc, then argv, then the environment. */
void __attribute__((noreturn, visibility("hidden"))) helper_main(long *stack);
void helper_main(long *stack) {
  int argc = (int)stack[0];
  char **argv = (char **)(stack + 1);
  char **env = argv + argc + 1;
  sigset_word blocked, ignored;
  if (argc < 5 || parse_set(argv[1], &blocked) != 0 || parse_set(argv[2], &ignored) != 0) fail(EINVAL);
  ignore_signals(ignored);
  if (argv[3][0] == '1') {
    int error = take_foreground();
    if (error != 0) fail(error);
  }
  sys(__NR_fcntl, ERROR_FD, F_SETFD, FD_CLOEXEC, 0);
  sys(__NR_rt_sigprocmask, SIG_SETMASK, (long)&blocked, 0, sizeof blocked);
  fail(exec_searching(argv[4], argv + 4, env));
}

#if defined(__x86_64__)
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  xor %ebp, %ebp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call helper_main\n"
        "  hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".global _start\n"
        "_start:\n"
        "  mov x29, #0\n"
        "  mov x30, #0\n"
        "  mov x0, sp\n"
        "  bl helper_main\n"
        "  brk #0\n");
#endif
