/*
 * The few system calls Node does not offer a PID 1: reaping orphans without
 * touching the children Node itself waits for, the child-subreaper flag, telling
 * a real fault from a signal sent with kill, forwarding signals from the signal
 * handler (the real-time ones Node cannot listen for too), and the exec helper
 * that starts the worker with the signal state drain-init inherited.
 */
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROTECTED 64

typedef struct {
  pid_t pids[MAX_PROTECTED];
  size_t count;
} protected_set;

static bool is_protected(const protected_set *set, pid_t pid) {
  for (size_t i = 0; i < set->count; i++) {
    if (set->pids[i] == pid) return true;
  }
  return false;
}

/* Throws an Error whose code is the errno name (ENOENT), as Node's own errors have. */
static napi_value throw_errno(napi_env env, const char *what) {
  int error = errno;
  const char *name = strerrorname_np(error);
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(error));
  napi_throw_error(env, name != NULL ? name : "EUNKNOWN", message);
  return NULL;
}

/* Reaps one child if it has exited and is not one Node waits for. */
static int reap_if_orphan(pid_t pid, const protected_set *set) {
  if (pid <= 0 || is_protected(set, pid)) return 0;
  int status;
  return waitpid(pid, &status, WNOHANG) == pid ? 1 : 0;
}

/*
 * Walks every thread's children list (orphans are re-parented to a thread of ours): slow with many
 * children, as each list is read whole, so only when a zombie Node waits for hides the others.
 */
static int reap_listed_children(const protected_set *set) {
  DIR *tasks = opendir("/proc/self/task");
  if (tasks == NULL) return 0;
  int reaped = 0;
  struct dirent *task;
  while ((task = readdir(tasks)) != NULL) {
    if (task->d_name[0] == '.') continue;
    char path[sizeof "/proc/self/task//children" + sizeof task->d_name];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", task->d_name);
    FILE *children = fopen(path, "r");
    if (children == NULL) continue;
    long pid;
    while (fscanf(children, "%ld", &pid) == 1) reaped += reap_if_orphan((pid_t)pid, set);
    fclose(children);
  }
  closedir(tasks);
  return reaped;
}

/*
 * Peeks at the first exited child (of any of our threads) and reaps it by pid unless Node waits for
 * it: two system calls a zombie, whatever the number of children. Stops at a protected zombie, as
 * waitid would show it first again, and says so in *hidden.
 */
static int reap_by_peeking(const protected_set *set, bool *hidden) {
  int reaped = 0;
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) return reaped;
    if (is_protected(set, info.si_pid)) {
      *hidden = true;
      return reaped;
    }
    if (reap_if_orphan(info.si_pid, set) == 0) return reaped;
    reaped++;
  }
}

/*
 * Reaping in the SIGCHLD handler itself. Node hears of a signal through libuv's signal pipe and a turn
 * of its event loop, which costs many times the reaping: with orphans exiting one after another, that
 * was most of drain-init's CPU. The handler reaps the orphans and passes the signal on to the handler it
 * replaced (libuv's, and so Node) only when a child Node waits for changed state: it exited (libuv reaps
 * it), stopped or continued (drain-init resumes a suspended worker). After a fork of this process it
 * reaps nothing and passes every SIGCHLD on until JavaScript gives the pids it protects again: the new
 * child may be one Node waits for.
 */
static atomic_int fork_count;
/* fork_count when JavaScript last gave the protected pids; -1 while the handler must not reap. */
static atomic_int forks_known = -1;
static atomic_int handler_protected[MAX_PROTECTED];
static atomic_int handler_protected_count;
static atomic_int reaped_by_handler;
static struct sigaction replaced_child_action;

static void count_fork(void) { atomic_fetch_add(&fork_count, 1); }

/*
 * Forks are counted by a pthread_atfork handler, which runs for libuv's fork(). Should a child ever be
 * made some other way (posix_spawn, vfork), a protected pid would turn up with no fork counted: the
 * handler then stops reaping for good, and passes every SIGCHLD on as Node's own handler would. So that
 * such a child is never reaped before that is seen, the handler reaps only while a protected child runs
 * (none between a worker's exit and its restart).
 */
static protected_set last_protected;
static int forks_at_last_protect;
static bool forks_uncounted = false;

static void protect_in_handler(const protected_set *set) {
  int forks = atomic_load(&fork_count);
  for (size_t i = 0; i < set->count; i++) {
    if (!is_protected(&last_protected, set->pids[i]) && forks == forks_at_last_protect) forks_uncounted = true;
  }
  last_protected = *set;
  forks_at_last_protect = forks;
  atomic_store(&forks_known, -1);
  if (forks_uncounted || set->count == 0) return;
  for (size_t i = 0; i < set->count; i++) atomic_store(&handler_protected[i], set->pids[i]);
  atomic_store(&handler_protected_count, (int)set->count);
  atomic_store(&forks_known, forks);
}

/* Calls a handler the way the kernel would have. */
static void call_action(const struct sigaction *action, int signo, siginfo_t *info, void *context) {
  if (action->sa_flags & SA_SIGINFO) {
    action->sa_sigaction(signo, info, context);
  } else if (action->sa_handler != SIG_DFL && action->sa_handler != SIG_IGN) {
    action->sa_handler(signo);
  }
}

/*
 * True when a protected child has exited, stopped or continued. A stop or continue is consumed (libuv
 * waits for exits only): the next SIGCHLD is passed on for the next change, not for this one again.
 */
static bool protected_child_changed(const protected_set *set) {
  for (size_t i = 0; i < set->count; i++) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)set->pids[i], &info, WEXITED | WSTOPPED | WCONTINUED | WNOHANG | WNOWAIT) != 0) continue;
    if (info.si_pid == 0) continue;
    if (info.si_code != CLD_EXITED && info.si_code != CLD_KILLED && info.si_code != CLD_DUMPED) {
      waitid(P_PID, (id_t)set->pids[i], &info, WSTOPPED | WCONTINUED | WNOHANG);
    }
    return true;
  }
  return false;
}

static void on_child_signal(int signo, siginfo_t *info, void *context) {
  int saved = errno;
  bool pass_on = true;
  if (atomic_load(&forks_known) == atomic_load(&fork_count)) {
    protected_set set = {.count = (size_t)atomic_load(&handler_protected_count)};
    for (size_t i = 0; i < set.count && i < MAX_PROTECTED; i++) set.pids[i] = atomic_load(&handler_protected[i]);
    bool hidden = false;
    atomic_fetch_add(&reaped_by_handler, reap_by_peeking(&set, &hidden));
    pass_on = hidden || protected_child_changed(&set);
  }
  errno = saved;
  if (pass_on) call_action(&replaced_child_action, signo, info, context);
}

/* reapInSignalHandler(): wraps the SIGCHLD handler now installed (libuv's); call after listening for SIGCHLD. */
static napi_value reap_in_signal_handler(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  static bool counting_forks = false;
  if (!counting_forks) {
    int error = pthread_atfork(count_fork, NULL, NULL);
    if (error != 0) {
      errno = error;
      return throw_errno(env, "pthread_atfork");
    }
    counting_forks = true;
  }
  struct sigaction current;
  if (sigaction(SIGCHLD, NULL, &current) != 0) return throw_errno(env, "sigaction");
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_child_signal) return NULL;
  replaced_child_action = current;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_child_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&action.sa_mask);
  if (sigaction(SIGCHLD, &action, NULL) != 0) return throw_errno(env, "sigaction");
  return NULL;
}

/* reapOrphans(protectedPids: number[]): zombies reaped, here and by the SIGCHLD handler since the last call */
static napi_value reap_orphans(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, cbinfo, &argc, argv, NULL, NULL);

  protected_set set = {.count = 0};
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "reapOrphans expects an array of pids");
    return NULL;
  }
  uint32_t length = 0;
  napi_get_array_length(env, argv[0], &length);
  for (uint32_t i = 0; i < length && set.count < MAX_PROTECTED; i++) {
    napi_value element;
    int32_t pid = 0;
    napi_get_element(env, argv[0], i, &element);
    if (napi_get_value_int32(env, element, &pid) == napi_ok) set.pids[set.count++] = pid;
  }
  protect_in_handler(&set);

  bool hidden = false;
  int reaped = reap_by_peeking(&set, &hidden);
  if (hidden) reaped += reap_listed_children(&set);
  reaped += atomic_exchange(&reaped_by_handler, 0);

  napi_value result;
  napi_create_int32(env, reaped, &result);
  return result;
}

static napi_value set_child_subreaper(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return throw_errno(env, "prctl(PR_SET_CHILD_SUBREAPER)");
  return NULL;
}

static napi_value is_child_subreaper(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  int flag = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, &flag, 0, 0, 0) != 0) return throw_errno(env, "prctl(PR_GET_CHILD_SUBREAPER)");
  napi_value result;
  napi_get_boolean(env, flag != 0, &result);
  return result;
}

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

/*
 * trimResidentSet(): number of bytes advised. Asks the kernel to reclaim the pages of this process's
 * read-only file mappings (the node executable and shared libraries): after start-up an init runs
 * a tiny part of that code, and the kernel faults back in what is used.
 */
static napi_value trim_resident_set(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  FILE *maps = fopen("/proc/self/maps", "r");
  if (maps == NULL) return throw_errno(env, "open /proc/self/maps");
  double advised = 0;
  char line[4096];
  while (fgets(line, sizeof line, maps) != NULL) {
    unsigned long start, end;
    char perms[5];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %4s %*s %*s %*s %n", &start, &end, perms, &path_at) < 3) continue;
    if (perms[1] == 'w' || line[path_at] != '/') continue;
    if (madvise((void *)start, end - start, MADV_PAGEOUT) == 0) advised += (double)(end - start);
  }
  fclose(maps);
  napi_value result;
  napi_create_double(env, advised, &result);
  return result;
}

/*
 * ownsTerminal(fd): true when fd is a terminal whose foreground process group is this process's own.
 * Under `unshare --pid --fork` both are 0: the group unshare leads is outside the namespace.
 */
static napi_value owns_terminal(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  napi_get_cb_info(env, cbinfo, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    napi_throw_type_error(env, NULL, "ownsTerminal expects a file descriptor");
    return NULL;
  }
  napi_value result;
  napi_get_boolean(env, isatty(fd) == 1 && tcgetpgrp(fd) == getpgrp(), &result);
  return result;
}

/*
 * Faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) that drain-init forwards when they are sent
 * with kill. A handler that returns from a real fault re-runs the faulting instruction forever: Node
 * with a listener for SIGSEGV spins at 100% CPU instead of dying. The guard passes a signal sent by a
 * process (si_code <= 0: SI_USER, SI_QUEUE, SI_TKILL) to the handler it replaced (libuv's), and makes
 * a fault raised by the kernel (si_code > 0) kill drain-init as it would without a listener.
 */
static const int FAULT_SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
static struct sigaction replaced_actions[NSIG];

static void on_fault_signal(int signo, siginfo_t *info, void *context) {
  if (info->si_code > 0) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigaction(signo, &action, NULL);
    raise(signo); /* blocked while this handler runs: delivered, with the default action, when it returns */
    return;
  }
  const struct sigaction *replaced = &replaced_actions[signo];
  if (replaced->sa_flags & SA_SIGINFO) {
    replaced->sa_sigaction(signo, info, context);
  } else if (replaced->sa_handler != SIG_DFL && replaced->sa_handler != SIG_IGN) {
    replaced->sa_handler(signo);
  }
}

/* guardFaultSignals(): wraps the handlers now installed for the fault signals; call after installing them. */
static napi_value guard_fault_signals(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  for (size_t i = 0; i < sizeof FAULT_SIGNALS / sizeof FAULT_SIGNALS[0]; i++) {
    int signo = FAULT_SIGNALS[i];
    struct sigaction current;
    if (sigaction(signo, NULL, &current) != 0) return throw_errno(env, "sigaction");
    if (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN || current.sa_sigaction == on_fault_signal) continue;
    replaced_actions[signo] = current;
    struct sigaction guard;
    memset(&guard, 0, sizeof guard);
    guard.sa_sigaction = on_fault_signal;
    guard.sa_flags = SA_SIGINFO | SA_RESTART;
    sigfillset(&guard.sa_mask);
    if (sigaction(signo, &guard, NULL) != 0) return throw_errno(env, "sigaction");
  }
  return NULL;
}

/*
 * Forwarding from the signal handler itself (kill is async-signal-safe): a signal reaches the worker as
 * soon as it reaches drain-init, with no turn of Node's event loop, as from tini. JavaScript still hears
 * of each one afterwards, through the handler replaced (libuv's), to log and count it: forwardedCount
 * says whether the handler sent it. A route maps a received signal to the one sent (--rewrite); a signal
 * without one (those that start a stop, those dropped) is left to JavaScript. The real-time signals,
 * which Node cannot listen for, are always forwarded unchanged. Never forwarded: a fault the kernel
 * raised (si_code > 0; the fault guard makes it kill drain-init) and drain-init's own abort().
 */
static volatile sig_atomic_t forward_target = 0;
static atomic_int forward_routes[NSIG];
static atomic_uint forwarded_counts[NSIG];
static struct sigaction replaced_forward_actions[NSIG];

static bool is_fault_signal(int signo) {
  for (size_t i = 0; i < sizeof FAULT_SIGNALS / sizeof FAULT_SIGNALS[0]; i++) {
    if (FAULT_SIGNALS[i] == signo) return true;
  }
  return false;
}

/*
 * Handlers of two signals can run at once on two threads: one at a time forwards and then tells Node
 * (the handler replaced, libuv's), so that Node's log has them in the order the worker got them. The
 * count goes up before, so that forwardedCount is right when Node reads it (but for a kill that fails as
 * the worker has just been reaped).
 */
static atomic_flag forwarding = ATOMIC_FLAG_INIT;

static void on_forwarded_signal(int signo, siginfo_t *info, void *context) {
  int saved = errno;
  while (atomic_flag_test_and_set_explicit(&forwarding, memory_order_acquire)) sched_yield();
  int sent = atomic_load(&forward_routes[signo]);
  pid_t target = forward_target;
  bool fault = info->si_code > 0 && is_fault_signal(signo);
  bool own_abort = signo == SIGABRT && info->si_code <= 0 && info->si_pid == getpid();
  if (sent != 0 && target != 0 && !fault && !own_abort) {
    atomic_fetch_add(&forwarded_counts[signo], 1);
    kill(target, sent);
  }
  errno = saved;
  call_action(&replaced_forward_actions[signo], signo, info, context);
  atomic_flag_clear_explicit(&forwarding, memory_order_release);
}

static int handle_forwarded(int signo) {
  struct sigaction current;
  if (sigaction(signo, NULL, &current) != 0) return -1;
  if ((current.sa_flags & SA_SIGINFO) && current.sa_sigaction == on_forwarded_signal) return 0;
  replaced_forward_actions[signo] = current;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_forwarded_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&action.sa_mask);
  return sigaction(signo, &action, NULL);
}

/*
 * forwardSignals(routes: [received, sent][]): from now on these signals, and the real-time ones, are
 * forwarded from the handler; an empty list stops all of it. Call after listening for the signals, and
 * after guardFaultSignals.
 */
static napi_value forward_signals(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  bool is_array = false;
  uint32_t count = 0;
  napi_get_cb_info(env, cbinfo, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "forwardSignals expects an array of [received, sent] pairs");
    return NULL;
  }
  napi_get_array_length(env, argv[0], &count);
  for (int signo = 1; signo < NSIG; signo++) atomic_store(&forward_routes[signo], 0);
  for (uint32_t i = 0; i < count; i++) {
    napi_value pair, value;
    int32_t received = 0, sent = 0;
    napi_get_element(env, argv[0], i, &pair);
    if (napi_get_element(env, pair, 0, &value) != napi_ok || napi_get_value_int32(env, value, &received) != napi_ok ||
        napi_get_element(env, pair, 1, &value) != napi_ok || napi_get_value_int32(env, value, &sent) != napi_ok ||
        received < 1 || received >= NSIG || sent < 0 || sent >= NSIG) {
      napi_throw_range_error(env, NULL, "forwardSignals: each route is a pair of signal numbers");
      return NULL;
    }
    atomic_store(&forward_routes[received], sent);
    if (handle_forwarded(received) != 0) return throw_errno(env, "sigaction");
  }
  for (int signo = SIGRTMIN; signo <= SIGRTMAX; signo++) {
    if (count > 0) atomic_store(&forward_routes[signo], signo);
    if (handle_forwarded(signo) != 0) return throw_errno(env, "sigaction");
  }
  return NULL;
}

/* setForwardTarget(target): a pid, a process group as a negative number, or 0 to forward nothing. */
static napi_value set_forward_target(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t target = 0;
  napi_get_cb_info(env, cbinfo, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &target) != napi_ok) {
    napi_throw_type_error(env, NULL, "setForwardTarget expects a pid");
    return NULL;
  }
  forward_target = target;
  return NULL;
}

/* forwardedCount(received): how many times the handler has forwarded this signal so far. */
static napi_value forwarded_count(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t signo = 0;
  napi_get_cb_info(env, cbinfo, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &signo) != napi_ok || signo < 1 || signo >= NSIG) {
    napi_throw_type_error(env, NULL, "forwardedCount expects a signal number");
    return NULL;
  }
  napi_value result;
  napi_create_uint32(env, atomic_load(&forwarded_counts[signo]), &result);
  return result;
}

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

/* The exec helper (exec_helper.c), built for this architecture by binding.gyp, carried in the addon. */
__asm__(".section .rodata\n"
        ".balign 16\n"
        "exec_helper_start:\n"
        ".incbin \"exec_helper\"\n"
        "exec_helper_end:\n"
        ".previous\n");
extern const unsigned char exec_helper_start[] __attribute__((visibility("hidden")));
extern const unsigned char exec_helper_end[] __attribute__((visibility("hidden")));

static int exec_helper_fd = -1;

/* A sealed memfd holding the exec helper, executable (MFD_EXEC: where vm.memfd_noexec asks for it). */
static int make_exec_helper_fd(void) {
  int fd = memfd_create("drain-init-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL) fd = memfd_create("drain-init-exec", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  for (const unsigned char *at = exec_helper_start; at < exec_helper_end;) {
    ssize_t written = write(fd, at, (size_t)(exec_helper_end - at));
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      int error = written < 0 ? errno : EIO;
      close(fd);
      errno = error;
      return -1;
    }
    at += written;
  }
  fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
  /* Above the descriptors a new process gets from libuv (stdio and the exec error pipe, 0 to 3). */
  if (fd <= STDERR_FILENO + 1) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
    int error = errno;
    close(fd);
    errno = error;
    fd = high;
  }
  return fd;
}

/*
 * execHelperPath(): where a new process can exec the helper from: /proc/self/fd/N, a memfd drain-init
 * keeps open (close-on-exec: the helper's own exec closes it). Made on the first call.
 */
static napi_value exec_helper_path(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  char path[sizeof "/proc/self/fd/" + 11];
  if (exec_helper_fd < 0) {
    int fd = make_exec_helper_fd();
    if (fd < 0) return throw_errno(env, "memfd_create");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (access(path, X_OK) != 0) {
      int error = errno;
      close(fd);
      errno = error;
      return throw_errno(env, path);
    }
    exec_helper_fd = fd;
  }
  snprintf(path, sizeof path, "/proc/self/fd/%d", exec_helper_fd);
  napi_value result;
  napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"reapOrphans", NULL, reap_orphans, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reapInSignalHandler", NULL, reap_in_signal_handler, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChildSubreaper", NULL, set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"isChildSubreaper", NULL, is_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimResidentSet", NULL, trim_resident_set, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ownsTerminal", NULL, owns_terminal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"guardFaultSignals", NULL, guard_fault_signals, NULL, NULL, NULL, napi_enumerable, NULL},
      {"forwardSignals", NULL, forward_signals, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setForwardTarget", NULL, set_forward_target, NULL, NULL, NULL, napi_enumerable, NULL},
      {"forwardedCount", NULL, forwarded_count, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execHelperPath", NULL, exec_helper_path, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

