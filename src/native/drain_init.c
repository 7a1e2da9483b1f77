/*
 * The few system calls Node does not offer a PID 1: reaping orphans without
 * touching the children Node itself waits for, and the child-subreaper flag.
 */
#include <node_api.h>

#include <dirent.h>
#include <errno.h>
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

static napi_value throw_errno(napi_env env, const char *what) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(errno));
  napi_throw_error(env, NULL, message);
  return NULL;
}

/* Reaps one child if it has exited and is not one Node waits for. */
static int reap_if_orphan(pid_t pid, const protected_set *set) {
  if (pid <= 0 || is_protected(set, pid)) return 0;
  int status;
  return waitpid(pid, &status, WNOHANG) == pid ? 1 : 0;
}

/* Walks every thread's children list: orphans are re-parented to a thread of ours. */
static int reap_listed_children(const protected_set *set, bool *listed) {
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
    *listed = true;
    long pid;
    while (fscanf(children, "%ld", &pid) == 1) reaped += reap_if_orphan((pid_t)pid, set);
    fclose(children);
  }
  closedir(tasks);
  return reaped;
}

/* Without /proc children lists, peek at waitable children one at a time. */
static int reap_by_peeking(const protected_set *set) {
  int reaped = 0;
  for (;;) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0) break;
    if (info.si_pid == 0 || is_protected(set, info.si_pid)) break;
    if (reap_if_orphan(info.si_pid, set) == 0) break;
    reaped++;
  }
  return reaped;
}

/* reapOrphans(protectedPids: number[]): number of zombies reaped */
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

  bool listed = false;
  int reaped = reap_listed_children(&set, &listed);
  if (!listed) reaped += reap_by_peeking(&set);

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

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"reapOrphans", NULL, reap_orphans, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChildSubreaper", NULL, set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"isChildSubreaper", NULL, is_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimResidentSet", NULL, trim_resident_set, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
