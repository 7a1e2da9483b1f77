/*
 * The first stage of every release build of drain-init, before Node runs. A release file is this
 * launcher followed by a payload (scripts/build/pack.ts): the Node single executable, the native addon
 * and, in the standalone build, glibc's loader and the libraries Node needs. The launcher
 *
 *   - records the signal mask and the ignored signals it was started with, which Node resets during its
 *     own start-up, in _DRAIN_INIT_INHERITED_SIGNALS ("<SigBlk>:<SigIgn>", as /proc/self/status prints
 *     them);
 *   - puts the addon in an anonymous memory file and names it in _DRAIN_INIT_ADDON (/proc/self/fd/N),
 *     so Node loads it with no file written anywhere;
 *   - standalone build: puts each library in a memory file too and preloads them (LD_PRELOAD), keeping
 *     the caller's LD_PRELOAD in _DRAIN_INIT_LD_PRELOAD for the worker;
 *   - maps Node's executable from its own file, where it sits in the payload, and the loader (the
 *     system's, named by Node's PT_INTERP, or the bundled one), then starts the loader as the kernel
 *     would have: the same process, the same stack, argv and auxiliary vector pointing at Node.
 *
 * It is freestanding (no libc: it runs where there is none) and linked at an address far from Node's.
 */
#include <elf.h>
#include <stddef.h>
#include <stdint.h>

#include <asm/unistd.h>
#include <linux/fcntl.h>
#include <linux/mman.h>

#if defined(__x86_64__)
#define ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define ELF_MACHINE EM_AARCH64
#else
#error "the launcher supports x86_64 and aarch64"
#endif

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

/* The payload's table, at the end of the file (written by scripts/build/pack.ts). */
#define TRAILER_MAGIC "DRAININITPACK001"
enum { ENTRY_NODE = 1, ENTRY_ADDON = 2, ENTRY_LOADER = 3, ENTRY_LIBRARY = 4 };
#define ENTRY_NAME_SIZE 48
#define MAX_ENTRIES 16
struct entry {
  uint32_t kind;
  uint32_t reserved;
  uint64_t offset;
  uint64_t size;
  char name[ENTRY_NAME_SIZE];
};
struct trailer {
  uint64_t table_offset;
  uint64_t count;
  char magic[16];
};

#define EXIT_CANNOT_START 127
#define MAX_PHDRS 32
#define SIGNAL_COUNT 64

/* ---- system calls ---- */

#if defined(__x86_64__)
static long syscall6(long n, long a, long b, long c, long d, long e, long f) {
  register long r10 __asm__("r10") = d;
  register long r8 __asm__("r8") = e;
  register long r9 __asm__("r9") = f;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
static long syscall6(long n, long a, long b, long c, long d, long e, long f) {
  register long x8 __asm__("x8") = n;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  register long x3 __asm__("x3") = d;
  register long x4 __asm__("x4") = e;
  register long x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
#endif

#define SYSCALL(n, a, b, c, d, e, f) syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

static int is_error(long ret) { return ret < 0 && ret > -4096; }

static long sys_openat(const char *path, int flags) { return SYSCALL(__NR_openat, AT_FDCWD, path, flags, 0, 0, 0); }
static long sys_pread(int fd, void *buf, size_t size, uint64_t offset) {
  return SYSCALL(__NR_pread64, fd, buf, size, offset, 0, 0);
}
static long sys_write(int fd, const void *buf, size_t size) { return SYSCALL(__NR_write, fd, buf, size, 0, 0, 0); }
static long sys_close(int fd) { return SYSCALL(__NR_close, fd, 0, 0, 0, 0, 0); }
static long sys_lseek_end(int fd) { return SYSCALL(__NR_lseek, fd, 0, 2 /* SEEK_END */, 0, 0, 0); }
static long sys_mmap(void *addr, size_t size, int prot, int flags, int fd, uint64_t offset) {
  return SYSCALL(__NR_mmap, addr, size, prot, flags, fd, offset);
}
static long sys_munmap(void *addr, size_t size) { return SYSCALL(__NR_munmap, addr, size, 0, 0, 0, 0); }
static long sys_memfd_create(const char *name, unsigned flags) {
  return SYSCALL(__NR_memfd_create, name, flags, 0, 0, 0, 0);
}
static __attribute__((noreturn)) void sys_exit(int code) {
  for (;;) SYSCALL(__NR_exit_group, code, 0, 0, 0, 0, 0);
}

/* ---- the few library functions the compiler may call, and strings ---- */

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

static size_t length(const char *s) {
  size_t n = 0;
  while (s[n] != '\0') n++;
  return n;
}

static int same(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* A fixed buffer that strings are appended to; too long a string is cut (the buffers are sized for it). */
struct text {
  char *buf;
  size_t cap;
  size_t len;
};

static void append(struct text *t, const char *s) {
  while (*s != '\0' && t->len + 1 < t->cap) t->buf[t->len++] = *s++;
  t->buf[t->len] = '\0';
}

static void append_number(struct text *t, unsigned long value) {
  char digits[24];
  int n = 0;
  do digits[n++] = (char)('0' + value % 10);
  while ((value /= 10) != 0);
  char reversed[24];
  for (int i = 0; i < n; i++) reversed[i] = digits[n - 1 - i];
  reversed[n] = '\0';
  append(t, reversed);
}

static void append_hex64(struct text *t, uint64_t value) {
  char hex[17];
  for (int i = 15; i >= 0; i--, value >>= 4) hex[i] = "0123456789abcdef"[value & 0xf];
  hex[16] = '\0';
  append(t, hex);
}

static __attribute__((noreturn)) void fail(const char *what, const char *detail, long error) {
  char message[512];
  struct text t = {message, sizeof message, 0};
  append(&t, "drain-init: cannot start: ");
  append(&t, what);
  if (detail != NULL) {
    append(&t, " ");
    append(&t, detail);
  }
  if (error != 0) {
    append(&t, " (errno ");
    append_number(&t, (unsigned long)-error);
    append(&t, ")");
  }
  append(&t, "\n");
  sys_write(2, message, t.len);
  sys_exit(EXIT_CANNOT_START);
}

/* ---- the inherited signal state ---- */

/* The kernel's struct sigaction on x86_64 and aarch64: only the handler is read. */
struct kernel_sigaction {
  void *handler;
  unsigned long flags;
  void *restorer;
  uint64_t mask;
};

#define SIG_IGN_HANDLER ((void *)1)

/* "<SigBlk>:<SigIgn>", each 16 hex digits, bit (signal - 1), as /proc/self/status prints them. */
static void inherited_signals(struct text *t) {
  uint64_t blocked = 0;
  SYSCALL(__NR_rt_sigprocmask, 0 /* SIG_BLOCK with no set: only read */, NULL, &blocked, sizeof blocked, 0, 0);
  uint64_t ignored = 0;
  for (int signo = 1; signo <= SIGNAL_COUNT; signo++) {
    struct kernel_sigaction action;
    if (SYSCALL(__NR_rt_sigaction, signo, NULL, &action, sizeof(uint64_t), 0, 0) == 0 &&
        action.handler == SIG_IGN_HANDLER)
      ignored |= (uint64_t)1 << (signo - 1);
  }
  append_hex64(t, blocked);
  append(t, ":");
  append_hex64(t, ignored);
}

/* ---- the payload ---- */

static void read_exactly(int fd, void *buf, size_t size, uint64_t offset, const char *what) {
  long got = sys_pread(fd, buf, size, offset);
  if (got != (long)size) fail("cannot read", what, is_error(got) ? got : 0);
}

/* The release file itself. Node loads the memory files by their /proc/self/fd paths too: /proc is needed. */
static int open_self(void) {
  long fd = sys_openat("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (is_error(fd)) fail("/proc/self/exe cannot be opened: drain-init needs /proc mounted", NULL, fd);
  return (int)fd;
}

static int read_table(int fd, struct entry *entries) {
  long end = sys_lseek_end(fd);
  struct trailer trailer;
  if (is_error(end) || end < (long)sizeof trailer) fail("no payload in this file", NULL, 0);
  read_exactly(fd, &trailer, sizeof trailer, (uint64_t)end - sizeof trailer, "the payload trailer");
  if (!same(trailer.magic, TRAILER_MAGIC, sizeof trailer.magic) || trailer.count > MAX_ENTRIES)
    fail("no payload in this file: run a release build", NULL, 0);
  read_exactly(fd, entries, trailer.count * sizeof *entries, trailer.table_offset, "the payload table");
  return (int)trailer.count;
}

static const struct entry *find_entry(const struct entry *entries, int count, uint32_t kind) {
  for (int i = 0; i < count; i++)
    if (entries[i].kind == kind) return &entries[i];
  return NULL;
}

/*
 * An anonymous memory file holding a payload entry: executable where vm.memfd_noexec asks for it to be
 * said (MFD_EXEC, Linux 6.3), close-on-exec so the worker never inherits it.
 */
static int memory_file(int self, const struct entry *entry, long page) {
  long fd = sys_memfd_create(entry->name, MFD_CLOEXEC | MFD_EXEC);
  if (is_error(fd)) fd = sys_memfd_create(entry->name, MFD_CLOEXEC);
  if (is_error(fd)) fail("memfd_create failed for", entry->name, fd);
  uint64_t start = entry->offset & ~(uint64_t)(page - 1);
  size_t skip = (size_t)(entry->offset - start);
  long mapped = sys_mmap(NULL, entry->size + skip, 0x1 /* PROT_READ */, MAP_PRIVATE, self, start);
  if (is_error(mapped)) fail("cannot map", entry->name, mapped);
  const char *bytes = (const char *)mapped + skip;
  for (size_t done = 0; done < entry->size;) {
    long wrote = sys_write((int)fd, bytes + done, entry->size - done);
    if (is_error(wrote) || wrote == 0) fail("cannot fill the memory file for", entry->name, wrote);
    done += (size_t)wrote;
  }
  sys_munmap((void *)mapped, entry->size + skip);
  return (int)fd;
}

/* ---- ELF loading ---- */

struct image {
  uintptr_t bias;
  uintptr_t entry;
  uintptr_t phdr;
  size_t phnum;
};

static int protection(uint32_t flags) {
  return ((flags & PF_R) ? 0x1 : 0) | ((flags & PF_W) ? 0x2 : 0) | ((flags & PF_X) ? 0x4 : 0);
}

/*
 * Maps the ELF file that starts at `base` in fd, as the kernel's loader does: ET_EXEC at its own
 * addresses (which must be free), ET_DYN anywhere. Copies PT_INTERP's path to `interp` when asked.
 */
static void load_elf(int fd, uint64_t base, long page, const char *what, struct image *image, char *interp,
                     size_t interp_size) {
  Elf64_Ehdr header;
  read_exactly(fd, &header, sizeof header, base, what);
  if (!same((const char *)header.e_ident, ELFMAG, SELFMAG) || header.e_ident[EI_CLASS] != ELFCLASS64 ||
      header.e_machine != ELF_MACHINE || (header.e_type != ET_EXEC && header.e_type != ET_DYN) ||
      header.e_phnum > MAX_PHDRS || header.e_phentsize != sizeof(Elf64_Phdr))
    fail("not an executable for this CPU:", what, 0);
  Elf64_Phdr phdrs[MAX_PHDRS];
  read_exactly(fd, phdrs, header.e_phnum * sizeof(Elf64_Phdr), base + header.e_phoff, what);

  uintptr_t low = UINTPTR_MAX, high = 0;
  for (size_t i = 0; i < header.e_phnum; i++) {
    const Elf64_Phdr *ph = &phdrs[i];
    if (ph->p_type == PT_INTERP && interp != NULL) {
      if (ph->p_filesz >= interp_size) fail("loader path too long in", what, 0);
      read_exactly(fd, interp, ph->p_filesz, base + ph->p_offset, what);
      interp[ph->p_filesz] = '\0';
    }
    if (ph->p_type != PT_LOAD) continue;
    if (((base + ph->p_offset) - ph->p_vaddr) % (uint64_t)page != 0) fail("misaligned segment in", what, 0);
    uintptr_t start = ph->p_vaddr & ~(uintptr_t)(page - 1);
    uintptr_t end = (ph->p_vaddr + ph->p_memsz + page - 1) & ~(uintptr_t)(page - 1);
    if (start < low) low = start;
    if (end > high) high = end;
  }
  if (high <= low) fail("no loadable segment in", what, 0);

  /* Reserve the whole span, then map each segment over it (the gaps stay inaccessible). */
  int fixed = header.e_type == ET_EXEC;
  long reserved = sys_mmap(fixed ? (void *)low : NULL, high - low, 0 /* PROT_NONE */,
                           MAP_PRIVATE | MAP_ANONYMOUS | (fixed ? MAP_FIXED_NOREPLACE : 0), -1, 0);
  if (is_error(reserved) || (fixed && (uintptr_t)reserved != low))
    fail("the addresses it needs are taken:", what, is_error(reserved) ? reserved : 0);
  uintptr_t bias = (uintptr_t)reserved - low;

  for (size_t i = 0; i < header.e_phnum; i++) {
    const Elf64_Phdr *ph = &phdrs[i];
    if (ph->p_type != PT_LOAD) continue;
    int prot = protection(ph->p_flags);
    uintptr_t start = bias + ph->p_vaddr;
    uintptr_t page_start = start & ~(uintptr_t)(page - 1);
    uintptr_t file_end = start + ph->p_filesz;
    uintptr_t mem_end = start + ph->p_memsz;
    if (ph->p_filesz > 0) {
      long mapped = sys_mmap((void *)page_start, file_end - page_start, prot, MAP_PRIVATE | MAP_FIXED, fd,
                             base + ph->p_offset - (start - page_start));
      if (is_error(mapped)) fail("cannot map a segment of", what, mapped);
    }
    if (ph->p_memsz > ph->p_filesz) {
      /* .bss: zero the rest of the last file page, then anonymous zero pages. */
      uintptr_t zero_page = (file_end + page - 1) & ~(uintptr_t)(page - 1);
      if (ph->p_filesz > 0 && (prot & 0x2)) memset((void *)file_end, 0, zero_page - file_end);
      if (mem_end > zero_page) {
        long mapped = sys_mmap((void *)zero_page, mem_end - zero_page, prot,
                               MAP_PRIVATE | MAP_FIXED | MAP_ANONYMOUS, -1, 0);
        if (is_error(mapped)) fail("cannot map the zero pages of", what, mapped);
      }
    }
  }

  image->bias = bias;
  image->entry = bias + header.e_entry;
  image->phnum = header.e_phnum;
  image->phdr = 0;
  for (size_t i = 0; i < header.e_phnum; i++) {
    const Elf64_Phdr *ph = &phdrs[i];
    if (ph->p_type == PT_PHDR) image->phdr = bias + ph->p_vaddr;
  }
  for (size_t i = 0; i < header.e_phnum && image->phdr == 0; i++) {
    const Elf64_Phdr *ph = &phdrs[i];
    if (ph->p_type == PT_LOAD && header.e_phoff >= ph->p_offset && header.e_phoff < ph->p_offset + ph->p_filesz)
      image->phdr = bias + ph->p_vaddr + (header.e_phoff - ph->p_offset);
  }
  if (image->phdr == 0) fail("program headers not loaded in", what, 0);
}

/* ---- the new start-up stack, and the jump into the loader ---- */

static __attribute__((noreturn)) void start_loader(uintptr_t entry, uintptr_t *stack) {
#if defined(__x86_64__)
  register long rdx __asm__("rdx") = 0; /* no atexit function for _start to register */
  __asm__ volatile("mov %0, %%rsp\n\tjmp *%1" : : "r"(stack), "r"(entry), "r"(rdx) : "memory");
#else
  register long x0 __asm__("x0") = 0;
  __asm__ volatile("mov sp, %0\n\tbr %1" : : "r"(stack), "r"(entry), "r"(x0) : "memory");
#endif
  __builtin_unreachable();
}

/* Strings the new environment points at: they outlive the launcher's frame. */
static char signals_var[64];
static char addon_var[64];
static char preload_var[1024];
static char saved_preload_var[4096];
static char loader_path[256];

static int has_name(const char *var, const char *name) {
  size_t n = length(name);
  return same(var, name, n) && var[n] == '=';
}

__attribute__((used, noreturn)) void launch(uintptr_t *initial) {
  long argc = (long)initial[0];
  char **argv = (char **)(initial + 1);
  char **envp = argv + argc + 1;
  size_t envc = 0;
  while (envp[envc] != NULL) envc++;
  Elf64_auxv_t *auxv = (Elf64_auxv_t *)(envp + envc + 1);
  size_t auxc = 0;
  long page = 4096;
  while (auxv[auxc].a_type != AT_NULL) {
    if (auxv[auxc].a_type == AT_PAGESZ) page = (long)auxv[auxc].a_un.a_val;
    auxc++;
  }

  struct text signals = {signals_var, sizeof signals_var, 0};
  append(&signals, "_DRAIN_INIT_INHERITED_SIGNALS=");
  inherited_signals(&signals);

  int self = open_self();
  struct entry entries[MAX_ENTRIES];
  int count = read_table(self, entries);
  const struct entry *node = find_entry(entries, count, ENTRY_NODE);
  const struct entry *addon = find_entry(entries, count, ENTRY_ADDON);
  const struct entry *bundled_loader = find_entry(entries, count, ENTRY_LOADER);
  if (node == NULL || addon == NULL) fail("incomplete payload: run a release build", NULL, 0);

  struct text addon_text = {addon_var, sizeof addon_var, 0};
  append(&addon_text, "_DRAIN_INIT_ADDON=/proc/self/fd/");
  append_number(&addon_text, (unsigned long)memory_file(self, addon, page));

  /* Standalone: the libraries, preloaded from memory files, in the payload's order (Node's own). */
  const char *caller_preload = NULL;
  for (size_t i = 0; i < envc; i++)
    if (has_name(envp[i], "LD_PRELOAD")) caller_preload = envp[i] + sizeof "LD_PRELOAD";
  struct text preload = {preload_var, sizeof preload_var, 0};
  struct text saved_preload = {saved_preload_var, sizeof saved_preload_var, 0};
  if (bundled_loader != NULL) {
    append(&preload, "LD_PRELOAD=");
    for (int i = 0; i < count; i++) {
      if (entries[i].kind != ENTRY_LIBRARY) continue;
      if (preload.len > sizeof "LD_PRELOAD") append(&preload, " ");
      append(&preload, "/proc/self/fd/");
      append_number(&preload, (unsigned long)memory_file(self, &entries[i], page));
    }
    append(&saved_preload, "_DRAIN_INIT_LD_PRELOAD=");
    if (caller_preload != NULL && length(caller_preload) >= sizeof saved_preload_var - saved_preload.len)
      fail("LD_PRELOAD is too long to keep for the worker", NULL, 0);
    if (caller_preload != NULL) append(&saved_preload, caller_preload);
  }

  struct image program, loader;
  load_elf(self, node->offset, page, "node", &program, loader_path, sizeof loader_path);
  if (bundled_loader != NULL) {
    load_elf(self, bundled_loader->offset, page, "the bundled loader", &loader, NULL, 0);
  } else {
    long fd = sys_openat(loader_path, O_RDONLY | O_CLOEXEC);
    if (is_error(fd))
      fail(loader_path, "is missing: this is the glibc build (glibc 2.28 or later); use the standalone build",
           fd);
    load_elf((int)fd, 0, page, loader_path, &loader, NULL, 0);
    sys_close((int)fd);
  }
  sys_close(self);

  /* argc, argv, the environment (ours replace the caller's of the same name), the auxiliary vector. */
  const char *ours[] = {signals_var, addon_var, preload.len > 0 ? preload_var : NULL,
                        saved_preload.len > 0 ? saved_preload_var : NULL};
  size_t slots = 1 + (size_t)argc + 1 + envc + sizeof ours / sizeof ours[0] + 1 + 2 * (auxc + 1);
  uintptr_t *stack = __builtin_alloca((slots + 2) * sizeof(uintptr_t));
  stack = (uintptr_t *)(((uintptr_t)stack + 15) & ~(uintptr_t)15);
  size_t at = 0;
  stack[at++] = (uintptr_t)argc;
  for (long i = 0; i < argc; i++) stack[at++] = (uintptr_t)argv[i];
  stack[at++] = 0;
  for (size_t i = 0; i < envc; i++) {
    /* Only the launcher's own says which descriptors Node may close: never a caller's. */
    int replaced = has_name(envp[i], "_DRAIN_INIT_LD_PRELOAD");
    for (size_t j = 0; j < sizeof ours / sizeof ours[0]; j++) {
      if (ours[j] == NULL) continue;
      size_t name = 0;
      while (ours[j][name] != '=') name++;
      if (same(envp[i], ours[j], name + 1)) replaced = 1;
    }
    if (!replaced) stack[at++] = (uintptr_t)envp[i];
  }
  for (size_t j = 0; j < sizeof ours / sizeof ours[0]; j++)
    if (ours[j] != NULL) stack[at++] = (uintptr_t)ours[j];
  stack[at++] = 0;
  for (size_t i = 0; i <= auxc; i++) {
    uintptr_t value = auxv[i].a_un.a_val;
    switch (auxv[i].a_type) {
    case AT_PHDR: value = program.phdr; break;
    case AT_PHNUM: value = program.phnum; break;
    case AT_PHENT: value = sizeof(Elf64_Phdr); break;
    case AT_ENTRY: value = program.entry; break;
    case AT_BASE: value = loader.bias; break;
    default: break;
    }
    stack[at++] = auxv[i].a_type;
    stack[at++] = value;
  }
  start_loader(loader.entry, stack);
}

#if defined(__x86_64__)
__asm__(".globl _start\n_start:\n\txor %ebp, %ebp\n\tmov %rsp, %rdi\n\tand $-16, %rsp\n\tcall launch\n\thlt\n");
#else
__asm__(".globl _start\n_start:\n\tmov x29, #0\n\tmov x30, #0\n\tmov x0, sp\n\tbl launch\n\tbrk #0\n");
#endif
