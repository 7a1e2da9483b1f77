/*
 * The child process for scripts/bench/init-core.ts, run under each init as PID 1 of a new PID namespace.
 * Compiled at bench time into .bench/bench-child. Every timestamp is CLOCK_MONOTONIC in nanoseconds,
 * the clock Node's process.hrtime.bigint() reads, so the bench can subtract its own readings.
 *
 *   bench-child start       print the time main() was entered, then exit 0
 *   bench-child sigwait     block SIGUSR1, print "ready", then for every SIGUSR1 received print the time
 *                           sigwaitinfo returned; runs until killed (SIGTERM, forwarded by the init)
 *   bench-child orphans N MS  create N orphans (double fork: the middle process exits at once), let them all
 *                           exit together, then poll this namespace's /proc until only PID 1 and this
 *                           process remain; print "<ns from the last orphan's exit until all are reaped>
 *                           <ns the exits took> <scans of /proc>", or "-1 ..." if that takes over MS ms
 *   bench-child orphans-spread N LIFE MS
 *                           create N orphans one after another, each exiting LIFE ms after its start, so
 *                           that they exit one by one while others live on (as a worker's short-lived
 *                           children do); once all are reaped print "<ns of CPU PID 1 used> <ns from the
 *                           first fork until the last reap>", or "-1 -1" if that takes over MS ms. PID 1's
 *                           CPU is the run time of all its threads (/proc/1/task/<tid>/schedstat), from the
 *                           first fork until SETTLE_NS after the last reap, so work it does after counts too.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int die(const char *what) {
  perror(what);
  return 1;
}

static int sigwait_mode(void) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  signal(SIGUSR1, SIG_DFL);
  if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) return die("sigprocmask");
  setvbuf(stdout, NULL, _IONBF, 0);
  printf("ready\n");
  for (;;) {
    siginfo_t info;
    if (sigwaitinfo(&set, &info) < 0) {
      if (errno == EINTR) continue;
      return die("sigwaitinfo");
    }
    printf("%lld\n", now_ns());
  }
}

/* Run time of every thread of PID 1 in ns (the first field of schedstat), or -1. */
static long long init_cpu_ns(void) {
  DIR *tasks = opendir("/proc/1/task");
  if (tasks == NULL) return -1;
  long long total = 0;
  struct dirent *task;
  while ((task = readdir(tasks)) != NULL) {
    if (!isdigit((unsigned char)task->d_name[0])) continue;
    char path[sizeof "/proc/1/task//schedstat" + sizeof task->d_name];
    snprintf(path, sizeof path, "/proc/1/task/%s/schedstat", task->d_name);
    FILE *file = fopen(path, "r");
    if (file == NULL) continue;
    long long ns = 0;
    if (fscanf(file, "%lld", &ns) == 1) total += ns;
    fclose(file);
  }
  closedir(tasks);
  return total;
}

struct shared {
  atomic_int exited;
  long long exit_ns[];
};

/* Processes in this PID namespace other than PID 1 and this one (zombies included: they stay listed until reaped). */
static int count_others(pid_t self) {
  DIR *proc = opendir("/proc");
  if (proc == NULL) return -1;
  int count = 0;
  struct dirent *entry;
  while ((entry = readdir(proc)) != NULL) {
    if (!isdigit((unsigned char)entry->d_name[0])) continue;
    long pid = strtol(entry->d_name, NULL, 10);
    if (pid != 1 && pid != self) count++;
  }
  closedir(proc);
  return count;
}

static int orphans_mode(int n, long long timeout_ns) {
  struct shared *shm = mmap(NULL, sizeof(struct shared) + (size_t)n * sizeof(long long), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shm == MAP_FAILED) return die("mmap");
  int gate[2];
  if (pipe(gate) != 0) return die("pipe");
  for (int i = 0; i < n; i++) {
    pid_t middle = fork();
    if (middle < 0) return die("fork");
    if (middle == 0) {
      pid_t orphan = fork();
      if (orphan == 0) {
        /* Wait for the gate to open (EOF once the parent closes the last write end), then exit. */
        close(gate[1]);
        char byte;
        while (read(gate[0], &byte, 1) < 0 && errno == EINTR) {}
        shm->exit_ns[i] = now_ns();
        atomic_fetch_add(&shm->exited, 1);
        _exit(0);
      }
      _exit(orphan < 0 ? 1 : 0);
    }
    int status;
    if (waitpid(middle, &status, 0) != middle || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      fprintf(stderr, "bench-child: fork of orphan %d failed\n", i);
      return 1;
    }
  }
  pid_t self = getpid();
  long long released = now_ns();
  close(gate[1]);
  long long deadline = released + timeout_ns;
  struct timespec nap = {0, 50000};
  while (atomic_load(&shm->exited) < n) {
    if (now_ns() > deadline) {
      printf("-1 0 0\n");
      return 0;
    }
    nanosleep(&nap, NULL);
  }
  long long last_exit = 0;
  for (int i = 0; i < n; i++) {
    if (shm->exit_ns[i] > last_exit) last_exit = shm->exit_ns[i];
  }
  int scans = 0;
  for (;;) {
    int others = count_others(self);
    scans++;
    if (others < 0) return die("/proc");
    if (others == 0) break;
    if (now_ns() > deadline) {
      printf("-1 %lld %d\n", last_exit - released, scans);
      return 0;
    }
  }
  long long cleared = now_ns();
  printf("%lld %lld %d\n", cleared - last_exit, last_exit - released, scans);
  return 0;
}

#define SETTLE_NS 200000000LL

static int orphans_spread_mode(int n, long long life_ns, long long timeout_ns) {
  pid_t self = getpid();
  long long cpu_before = init_cpu_ns();
  long long started = now_ns();
  for (int i = 0; i < n; i++) {
    pid_t middle = fork();
    if (middle < 0) return die("fork");
    if (middle == 0) {
      if (fork() == 0) {
        struct timespec life = {life_ns / 1000000000LL, life_ns % 1000000000LL};
        nanosleep(&life, NULL);
      }
      _exit(0);
    }
    int status;
    if (waitpid(middle, &status, 0) != middle) return die("waitpid");
  }
  struct timespec nap = {0, 1000000};
  for (;;) {
    int others = count_others(self);
    if (others < 0) return die("/proc");
    if (others == 0) break;
    if (now_ns() - started > timeout_ns) {
      printf("-1 -1\n");
      return 0;
    }
    nanosleep(&nap, NULL);
  }
  long long cleared = now_ns();
  struct timespec settle = {0, SETTLE_NS};
  nanosleep(&settle, NULL);
  long long cpu_after = init_cpu_ns();
  printf("%lld %lld\n", cpu_before < 0 || cpu_after < 0 ? -1 : cpu_after - cpu_before, cleared - started);
  return 0;
}

int main(int argc, char **argv) {
  long long started = now_ns();
  if (argc >= 2 && strcmp(argv[1], "start") == 0) {
    printf("%lld\n", started);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "sigwait") == 0) return sigwait_mode();
  if (argc >= 4 && strcmp(argv[1], "orphans") == 0) {
    int n = atoi(argv[2]);
    long long timeout_ms = atoll(argv[3]);
    if (n > 0 && timeout_ms > 0) return orphans_mode(n, timeout_ms * 1000000LL);
  }
  if (argc >= 5 && strcmp(argv[1], "orphans-spread") == 0) {
    int n = atoi(argv[2]);
    long long life_ms = atoll(argv[3]), timeout_ms = atoll(argv[4]);
    if (n > 0 && life_ms > 0 && timeout_ms > 0) return orphans_spread_mode(n, life_ms * 1000000LL, timeout_ms * 1000000LL);
  }
  fprintf(stderr, "usage: bench-child start | sigwait | orphans N TIMEOUT_MS | orphans-spread N LIFE_MS TIMEOUT_MS\n");
  return 2;
}
