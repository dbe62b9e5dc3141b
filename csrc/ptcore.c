/* ptcore.c - ptstub's all-stop engine core: waitpid, stop-all, breakpoint step-over, memory, registers.
 *
 * Follows ptrace(2) (PTRACE_SEIZE / PTRACE_INTERRUPT semantics), signal(7) (syscall restart) and the
 * facts measured in DESIGN.md §2-§3.  Invariants:
 *   - one tracer thread calls everything here (ptrace requires it);
 *   - a thread is PT_RUNNING exactly when the kernel may run it; e->nrunning counts them;
 *   - we never PTRACE_INTERRUPT a thread that is stopped (the interrupt would stay armed);
 *   - an event collected while stopping the world is kept on its thread, never dropped;
 *   - a stop at an int3 of ours has its pc rewound before anyone can look at it.
 * Errors are returned as -errno; nothing here prints or exits.
 */
#define _GNU_SOURCE
#include "ptcore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#define ERESTARTNOHAND 514
#define INT3 0xcc
#define DR_OFFSET(n) (offsetof(struct user, u_debugreg) + (n) * sizeof(long))

/* The one piece of process-wide state: a signal handler gets no context, so the SIGCHLD wake-up
 * eventfd lives here.  Every engine in the process shares it (they share waitpid(-1) too). */
static volatile int chld_wakefd = -1;
static struct sigaction chained_sigchld;

/* ------------------------------------------------------------------------------------------------ */
/* small helpers                                                                                     */

uint64_t pt_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_random(pt_engine *e)
{
    uint64_t x = e->rng ? e->rng : 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    e->rng = x;
    return x;
}

static void on_sigchld(int sig, siginfo_t *info, void *uctx)
{
    int saved = errno;
    uint64_t one = 1;
    if (chld_wakefd >= 0)
        (void)!write(chld_wakefd, &one, sizeof one);
    if (chained_sigchld.sa_flags & SA_SIGINFO) {
        if (chained_sigchld.sa_sigaction)
            chained_sigchld.sa_sigaction(sig, info, uctx);
    } else if (chained_sigchld.sa_handler != SIG_DFL && chained_sigchld.sa_handler != SIG_IGN) {
        chained_sigchld.sa_handler(sig);
    }
    errno = saved;
}

static int install_sigchld_wakeup(void)
{
    if (chld_wakefd >= 0)
        return 0;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    chld_wakefd = fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigchld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART; /* no SA_NOCLDSTOP: ptrace stops must wake us */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGCHLD, &sa, &chained_sigchld) < 0)
        return -errno;
    return 0;
}

static void drain_fd(int fd)
{
    uint64_t v; /* one read resets an eventfd's counter */
    (void)!read(fd, &v, sizeof v);
}

/* The public waiting calls run with SIGCHLD blocked, so the many child state changes of one stop
 * cost no handler runs; it is unblocked only while we sleep, atomically, as pselect(2) describes:
 * a SIGCHLD pending at that moment ends the sleep at once (EINTR). */
_Static_assert(sizeof(sigset_t) <= sizeof(((pt_engine *)0)->sleep_mask), "sigset_t fits sleep_mask");

static int sleep_on(pt_engine *e, struct pollfd *fds, int nfds, int timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    return ppoll(fds, (nfds_t)nfds, tsp, (const sigset_t *)e->sleep_mask);
}

/* The mask to sleep with: the caller's own, less SIGCHLD (computed once per public call). */
static void set_sleep_mask(pt_engine *e, const sigset_t *callers)
{
    sigset_t during = *callers;
    sigdelset(&during, SIGCHLD);
    memcpy(e->sleep_mask, &during, sizeof during);
}

static void block_sigchld(sigset_t *old)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, old);
}

static void restore_mask(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* Body of each public call that waits: the work runs with SIGCHLD blocked (see sleep_on). */
#define WITH_SIGCHLD_BLOCKED(call)                                                                     \
    do {                                                                                               \
        sigset_t old_mask_;                                                                            \
        block_sigchld(&old_mask_);                                                                     \
        set_sleep_mask(e, &old_mask_);                                                                 \
        int rc_ = (call);                                                                              \
        restore_mask(&old_mask_);                                                                      \
        return rc_;                                                                                    \
    } while (0)

/* Read "Tgid:" or a signal mask line from /proc/PID/task/TID/status. */
static int read_status_field(int pid, int tid, const char *field, char *out, size_t outlen)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = 0;
    size_t flen = strlen(field);
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, field, flen) == 0) {
            char *v = line + flen;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t i = 0;
            while (v[i] && v[i] != '\n' && i + 1 < outlen) {
                out[i] = v[i];
                i++;
            }
            out[i] = 0;
            return 0;
        }
    }
    return -ENOENT;
}

static int tgid_of(int tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = 0;
    char *p = strstr(buf, "\nTgid:");
    return p ? atoi(p + 6) : -ENOENT;
}

/* Process state letter from /proc/PID/task/TID/stat ('R', 'S', 'T', 't', 'Z', 'X'...), 0 if gone. */
static char task_state(int pid, int tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    return (p && p[1] && p[2]) ? p[2] : 0;
}

static uint64_t hexmask(const char *s)
{
    return strtoull(s, NULL, 16);
}

/* True when the thread has a signal pending that it does not block (signal(7)): then an -EINTR
 * return is what a run without the debugger would see too, so we must not hide it. */
static int has_deliverable_signal(int pid, int tid)
{
    char pnd[64], shd[64], blk[64];
    if (read_status_field(pid, tid, "SigPnd:", pnd, sizeof pnd) < 0 ||
        read_status_field(pid, tid, "ShdPnd:", shd, sizeof shd) < 0 ||
        read_status_field(pid, tid, "SigBlk:", blk, sizeof blk) < 0)
        return 1; /* cannot tell: be conservative, leave the EINTR alone */
    return ((hexmask(pnd) | hexmask(shd)) & ~hexmask(blk)) != 0;
}

static int sigtrap_pending(int pid, int tid)
{
    char pnd[64];
    if (read_status_field(pid, tid, "SigPnd:", pnd, sizeof pnd) < 0)
        return 0;
    return (hexmask(pnd) >> (SIGTRAP - 1)) & 1;
}

/* ------------------------------------------------------------------------------------------------ */
/* thread table                                                                                      */

static void hash_rebuild(pt_engine *e)
{
    int32_t need = 16;
    while (need < 2 * e->cap)
        need <<= 1;
    if (need != e->hashcap) {
        free(e->hash);
        e->hash = calloc((size_t)need, sizeof(int32_t));
        e->hashcap = need;
    } else {
        memset(e->hash, 0, (size_t)need * sizeof(int32_t));
    }
    for (int32_t i = 0; i < e->nthreads; i++) {
        uint32_t h = ((uint32_t)e->threads[i]->tid * 2654435761u) & (uint32_t)(e->hashcap - 1);
        while (e->hash[h])
            h = (h + 1) & (uint32_t)(e->hashcap - 1);
        e->hash[h] = i + 1;
    }
}

static pt_thread *find(pt_engine *e, int32_t tid)
{
    if (!e->hashcap)
        return NULL;
    uint32_t h = ((uint32_t)tid * 2654435761u) & (uint32_t)(e->hashcap - 1);
    while (e->hash[h]) {
        pt_thread *t = e->threads[e->hash[h] - 1];
        if (t->tid == tid)
            return t;
        h = (h + 1) & (uint32_t)(e->hashcap - 1);
    }
    return NULL;
}

int pt_find_thread(pt_engine *e, int32_t tid)
{
    pt_thread *t = find(e, tid);
    if (!t)
        return -ESRCH;
    for (int32_t i = 0; i < e->nthreads; i++)
        if (e->threads[i] == t)
            return i;
    return -ESRCH;
}

static void set_state(pt_engine *e, pt_thread *t, int32_t state)
{
    if (t->state == PT_RUNNING)
        e->nrunning--;
    if (state == PT_RUNNING)
        e->nrunning++;
    t->state = state;
}

static pt_thread *add_thread(pt_engine *e, int32_t tid, int32_t state)
{
    if (e->nthreads == e->cap) {
        int32_t ncap = e->cap ? e->cap * 2 : 64;
        pt_thread **n = realloc(e->threads, (size_t)ncap * sizeof *n);
        if (!n)
            return NULL;
        e->threads = n;
        e->cap = ncap;
    }
    pt_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->tid = tid;
    t->state = PT_STOPPED;
    t->action = PT_ACT_CONT;
    e->threads[e->nthreads++] = t;
    if (e->hashcap < 2 * e->cap) {
        hash_rebuild(e);
    } else {
        uint32_t h = ((uint32_t)tid * 2654435761u) & (uint32_t)(e->hashcap - 1);
        while (e->hash[h])
            h = (h + 1) & (uint32_t)(e->hashcap - 1);
        e->hash[h] = e->nthreads;
    }
    set_state(e, t, state);
    return t;
}

/* Drop records of threads that are gone.  Only called where no pt_thread pointer is held. */
int pt_prune(pt_engine *e)
{
    int32_t j = 0;
    for (int32_t i = 0; i < e->nthreads; i++) {
        if (e->threads[i]->state == PT_GONE)
            free(e->threads[i]);
        else
            e->threads[j++] = e->threads[i];
    }
    int removed = e->nthreads - j;
    e->nthreads = j;
    if (removed)
        hash_rebuild(e);
    return removed;
}

static void remember_orphan(pt_engine *e, int tid, int status)
{
    if (e->n_orphans < 16) {
        e->orphan_tid[e->n_orphans] = tid;
        e->orphan_status[e->n_orphans] = status;
        e->n_orphans++;
    }
}

static int take_orphan(pt_engine *e, int tid, int *status)
{
    for (int i = 0; i < e->n_orphans; i++) {
        if (e->orphan_tid[i] == tid) {
            *status = e->orphan_status[i];
            e->n_orphans--;
            e->orphan_tid[i] = e->orphan_tid[e->n_orphans];
            e->orphan_status[i] = e->orphan_status[e->n_orphans];
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* breakpoints and memory                                                                            */

static pt_breakpoint *bp_at(pt_engine *e, uint64_t addr)
{
    for (int32_t i = 0; i < e->nbps; i++)
        if (e->bps[i].addr == addr)
            return &e->bps[i];
    return NULL;
}

static int poke_byte(int memfd, uint64_t addr, uint8_t byte)
{
    ssize_t n = pwrite(memfd, &byte, 1, (off_t)addr);
    if (n == 1)
        return 0;
    return n < 0 ? -errno : -EIO;
}

static int64_t raw_read(pt_engine *e, uint64_t addr, uint8_t *buf, uint64_t len)
{
    uint64_t done = 0;
    if (len > 64) { /* process_vm_readv is fastest for large reads (DESIGN.md §7) */
        struct iovec local = {buf, len}, remote = {(void *)(uintptr_t)addr, len};
        ssize_t n = process_vm_readv(e->pid, &local, 1, &remote, 1, 0);
        if (n > 0)
            done = (uint64_t)n;
    }
    while (done < len) { /* /proc/PID/mem reads pages process_vm_readv cannot (e.g. PROT_NONE guard) */
        ssize_t n = pread(e->memfd, buf + done, len - done, (off_t)(addr + done));
        if (n <= 0) {
            if (done)
                break;
            return n < 0 ? -errno : -EIO;
        }
        done += (uint64_t)n;
    }
    return (int64_t)done;
}

int64_t pt_read_memory(pt_engine *e, uint64_t addr, uint8_t *buf, uint64_t len)
{
    int64_t n = raw_read(e, addr, buf, len);
    if (n <= 0)
        return n;
    for (int32_t i = 0; i < e->nbps; i++) { /* show the program's bytes, never our int3 */
        uint64_t a = e->bps[i].addr;
        if (a >= addr && a < addr + (uint64_t)n && e->vfork_parent_tid == 0)
            buf[a - addr] = e->bps[i].orig;
    }
    return n;
}

int64_t pt_write_memory(pt_engine *e, uint64_t addr, const uint8_t *buf, uint64_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, buf, len);
    for (int32_t i = 0; i < e->nbps; i++) { /* a write under a breakpoint changes its saved byte */
        uint64_t a = e->bps[i].addr;
        if (a >= addr && a < addr + len) {
            e->bps[i].orig = copy[a - addr];
            if (e->vfork_parent_tid == 0)
                copy[a - addr] = INT3;
        }
    }
    uint64_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(e->memfd, copy + done, len - done, (off_t)(addr + done));
        if (n <= 0) {
            free(copy);
            if (done)
                return (int64_t)done;
            return n < 0 ? -errno : -EIO;
        }
        done += (uint64_t)n;
    }
    free(copy);
    return (int64_t)done;
}

int pt_insert_breakpoint(pt_engine *e, uint64_t addr)
{
    if (bp_at(e, addr)) /* idempotent, and heals an int3 a vfork child's detach restored */
        return e->vfork_parent_tid ? 0 : poke_byte(e->memfd, addr, INT3);
    uint8_t orig;
    int64_t n = raw_read(e, addr, &orig, 1);
    if (n != 1)
        return n < 0 ? (int)n : -EIO;
    if (e->nbps == e->bpcap) {
        int32_t ncap = e->bpcap ? e->bpcap * 2 : 16;
        pt_breakpoint *nb = realloc(e->bps, (size_t)ncap * sizeof *nb);
        if (!nb)
            return -ENOMEM;
        e->bps = nb;
        e->bpcap = ncap;
    }
    if (e->vfork_parent_tid == 0) {
        int rc = poke_byte(e->memfd, addr, INT3);
        if (rc < 0)
            return rc;
    }
    memset(&e->bps[e->nbps], 0, sizeof e->bps[0]);
    e->bps[e->nbps].addr = addr;
    e->bps[e->nbps].orig = orig;
    e->nbps++;
    return 0;
}

int pt_remove_breakpoint(pt_engine *e, uint64_t addr)
{
    pt_breakpoint *b = bp_at(e, addr);
    if (!b)
        return -ENOENT;
    int rc = e->vfork_parent_tid ? 0 : poke_byte(e->memfd, addr, b->orig);
    *b = e->bps[--e->nbps];
    return rc == -EIO || rc == -ESRCH ? 0 : rc; /* the mapping may be gone: nothing left to restore */
}

/* Lift (restore=1) or put back (restore=0) every int3 in the memory behind memfd. */
static void write_all_breakpoints(pt_engine *e, int memfd, int restore)
{
    for (int32_t i = 0; i < e->nbps; i++)
        poke_byte(memfd, e->bps[i].addr, restore ? e->bps[i].orig : INT3);
}

/* ------------------------------------------------------------------------------------------------ */
/* registers                                                                                         */

int pt_get_regs(pt_engine *e, int32_t tid, uint8_t *buf216)
{
    (void)e;
    if (ptrace(PTRACE_GETREGS, tid, 0, buf216) < 0)
        return -errno;
    return 0;
}

int pt_set_regs(pt_engine *e, int32_t tid, const uint8_t *buf216)
{
    const struct user_regs_struct *r = (const void *)buf216;
    pt_thread *t = find(e, tid);
    struct user_regs_struct old;
    int moved = t && t->on_breakpoint && (ptrace(PTRACE_GETREGS, tid, 0, &old) < 0 || old.rip != r->rip);
    if (ptrace(PTRACE_SETREGS, tid, 0, (void *)buf216) < 0)
        return -errno;
    /* Moved off the int3 it reported: it has not executed what is at its new pc, so a breakpoint
     * there hits on resume (GDB's `jump` to a breakpoint stops at once, as with gdbserver, which
     * never steps over GDB's breakpoints itself). */
    if (moved)
        t->on_breakpoint = 0;
    /* A pending breakpoint hit is moot once the pc was moved elsewhere (gdbserver does the same). */
    if (t && (t->ev_kind == PT_EV_BREAKPOINT || t->ev_kind == PT_EV_STEP) && t->ev_pc != r->rip)
        t->ev_kind = PT_EV_NONE;
    return 0;
}

int pt_get_xstate(int32_t tid, uint8_t *buf, uint32_t len)
{
    struct iovec iov = {buf, len};
    if (ptrace(PTRACE_GETREGSET, tid, (void *)0x202 /* NT_X86_XSTATE */, &iov) < 0)
        return -errno;
    return (int)iov.iov_len;
}

int pt_set_xstate(int32_t tid, const uint8_t *buf, uint32_t len)
{
    struct iovec iov = {(void *)buf, len};
    if (ptrace(PTRACE_SETREGSET, tid, (void *)0x202, &iov) < 0)
        return -errno;
    return 0;
}

int pt_get_siginfo(int32_t tid, uint8_t *buf128)
{
    return ptrace(PTRACE_GETSIGINFO, tid, 0, buf128) < 0 ? -errno : 0;
}

int pt_set_siginfo(int32_t tid, const uint8_t *buf128)
{
    return ptrace(PTRACE_SETSIGINFO, tid, 0, (void *)buf128) < 0 ? -errno : 0;
}

static int apply_debugregs(pt_engine *e, int32_t tid)
{
    /* DR7 first to 0 so that changing an address never arms a half-configured slot. */
    if (ptrace(PTRACE_POKEUSER, tid, (void *)DR_OFFSET(7), 0) < 0)
        return -errno;
    for (int i = 0; i < 4; i++)
        if (ptrace(PTRACE_POKEUSER, tid, (void *)DR_OFFSET(i), (void *)(uintptr_t)e->dr[i]) < 0)
            return -errno;
    if (e->dr7 && ptrace(PTRACE_POKEUSER, tid, (void *)DR_OFFSET(7), (void *)(uintptr_t)e->dr7) < 0)
        return -errno;
    return 0;
}

int pt_set_debugregs(pt_engine *e, const uint64_t *dr4, uint64_t dr7)
{
    for (int i = 0; i < 4; i++)
        e->dr[i] = dr4[i];
    e->dr7 = dr7;
    int rc = 0;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->state != PT_STOPPED)
            continue;
        int r = apply_debugregs(e, t->tid);
        if (r < 0 && r != -ESRCH) /* ESRCH: the thread is dying; its registers no longer matter */
            rc = r;
    }
    return rc;
}

int pt_get_dr6(int32_t tid, uint64_t *out)
{
    errno = 0;
    long v = ptrace(PTRACE_PEEKUSER, tid, (void *)DR_OFFSET(6), 0);
    if (errno)
        return -errno;
    *out = (uint64_t)v;
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* resuming                                                                                          */

/* DESIGN.md §7: when busy threads outnumber CPUs, each PTRACE_CONT wakes a thread that can preempt
 * the tracer in the middle of resuming the rest.  For the length of a resume batch the tracer thread
 * gets a higher weight (nice -15, this thread only, when permitted), then its own back; holding it
 * longer measured worse (the tracer then preempts threads on their way to a stop).
 * PTSTUB_NO_RENICE=1 turns this off.  Returns the nice value to restore, or INT_MIN. */
#define NOT_BOOSTED (-2147483647 - 1)
static int boost_begin(void)
{
    const char *no = getenv("PTSTUB_NO_RENICE");
    if (no && *no && *no != '0')
        return NOT_BOOSTED;
    id_t self = (id_t)syscall(SYS_gettid);
    errno = 0;
    int current = getpriority(PRIO_PROCESS, self);
    if (errno != 0 || current <= -15 || setpriority(PRIO_PROCESS, self, -15) != 0)
        return NOT_BOOSTED;
    return current;
}

static void boost_end(int previous)
{
    if (previous != NOT_BOOSTED)
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), previous);
}

static int resume_thread(pt_engine *e, pt_thread *t, int sig)
{
    int req = PTRACE_CONT;
    if (t->action == PT_ACT_STEP || t->action == PT_ACT_RANGE)
        req = PTRACE_SINGLESTEP;
    else if (e->options & PT_OPT_CATCH_SYSCALLS)
        req = PTRACE_SYSCALL;
    if (t->exiting) /* past PTRACE_EVENT_EXIT: let it die; it is never waited for again */
        req = PTRACE_CONT;
    if (ptrace(req, t->tid, 0, (void *)(uintptr_t)sig) < 0) {
        int err = errno;
        if (err == ESRCH) { /* killed under us (SIGKILL, exit_group): its exit status will follow */
            set_state(e, t, PT_EXITING);
            return 0;
        }
        return -err;
    }
    t->resumed_ns = pt_now_ns();
    t->on_breakpoint = 0;
    set_state(e, t, t->exiting ? PT_EXITING : PT_RUNNING);
    return 0;
}

/* Resume a thread after a stop that is not reported, unless the world is stopping or stopped. */
static int keep_or_resume(pt_engine *e, pt_thread *t)
{
    if (e->stopping || e->world_stopped)
        return 0;
    int sig = t->deliver_sig;
    t->deliver_sig = 0;
    resume_thread(e, t, sig);
    return 0;
}

static int record(pt_thread *t, int kind, int sig, uint64_t pc, uint64_t data)
{
    t->ev_kind = kind;
    t->ev_sig = sig;
    t->ev_pc = pc;
    t->ev_data = data;
    return 1;
}

/* ------------------------------------------------------------------------------------------------ */
/* transparent restart (DESIGN.md §3)                                                                */

static int returns_eintr_when_stopped(long nr)
{
    switch (nr) {
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
#ifdef SYS_epoll_pwait2
    case SYS_epoll_pwait2:
#endif
    case SYS_rt_sigtimedwait:
    /* socket calls with SO_RCVTIMEO/SO_SNDTIMEO return -EINTR (sock_intr_errno) */
    case SYS_read:
    case SYS_readv:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_recvmmsg:
    case SYS_write:
    case SYS_writev:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_sendmmsg:
    case SYS_accept:
    case SYS_accept4:
    case SYS_connect:
    /* others that answer a stop with -EINTR */
    case SYS_semop:
    case SYS_semtimedop:
    case SYS_io_getevents:
    case SYS_mq_timedreceive:
    case SYS_mq_timedsend:
        return 1;
    default:
        return 0;
    }
}

/* epoll_wait/epoll_pwait take their timeout in milliseconds in r10 (the 4th argument).  Restarted as
 * is, each stop would start the full timeout again.  Instead ptstub keeps the call's deadline on the
 * wall clock, as the kernel does for nanosleep and poll (restart_block), and restarts it with the time
 * left.  The deadline is taken at the first stop, as if the call had just begun, so a wait can end
 * late by the time it had already waited then, never early.
 *
 * "The same call" is recognised by the pc and by r10 still holding the value we wrote; the first
 * write adds 1 ms (erring late), so a new call from the same place, passing its own timeout again,
 * is not mistaken for ours.  Other timed calls keep their timeout in program memory (timespec
 * pointers, SO_RCVTIMEO), which ptstub does not rewrite. */
static void shorten_timed_wait(pt_thread *t, struct user_regs_struct *r)
{
    long nr = (long)r->orig_rax;
    int timeout = (int)r->r10;
    if ((nr != SYS_epoll_wait && nr != SYS_epoll_pwait) || timeout < 0 || timeout >= 0x7fffff00) {
        t->restart_pc = 0;
        return;
    }
    uint64_t now = pt_now_ns();
    if (t->restart_pc != r->rip || t->restart_written != timeout) { /* first stop of this call */
        t->restart_pc = r->rip;
        t->restart_deadline_ns = now + (uint64_t)timeout * 1000000ull;
        t->restart_written = (int64_t)timeout + 1;
    } else {
        uint64_t left = t->restart_deadline_ns > now ? t->restart_deadline_ns - now : 0;
        t->restart_written = (int64_t)((left + 999999) / 1000000);
    }
    r->r10 = (unsigned long long)t->restart_written;
}

/* At an interrupt stop of ours: if the thread was pulled out of a call that would return EINTR only
 * because we stopped it, make the kernel restart it instead (-ERESTARTNOHAND). */
static void fixup_eintr(pt_engine *e, pt_thread *t, struct user_regs_struct *r)
{
    if (!(e->options & PT_OPT_EINTR_FIXUP) || (long)r->rax != -EINTR || (long)r->orig_rax < 0 ||
        !returns_eintr_when_stopped((long)r->orig_rax)) {
        t->restart_pc = 0; /* not (or no longer) in a restarted timed wait */
        return;
    }
    uint8_t insn[2];
    if (pt_read_memory(e, r->rip - 2, insn, 2) != 2 || insn[0] != 0x0f || insn[1] != 0x05)
        return;
    if (has_deliverable_signal(e->pid, t->tid))
        return;
    r->rax = (unsigned long long)-ERESTARTNOHAND;
    shorten_timed_wait(t, r);
    if (ptrace(PTRACE_SETREGS, t->tid, 0, r) == 0)
        e->n_eintr_fixups++;
}

/* Work at the interrupt stop we asked for: restart fix-up, and the int3-as-interrupted race
 * (DESIGN.md §2.3): pc one past a breakpoint of ours with SIGTRAP queued is a hit. */
static int at_interrupt_stop(pt_engine *e, pt_thread *t)
{
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return 0;
    if (e->nbps && bp_at(e, r.rip - 1) && sigtrap_pending(e->pid, t->tid)) {
        r.rip -= 1;
        if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) == 0) {
            t->stale_trap = 1;
            t->on_breakpoint = 1;
            return record(t, PT_EV_BREAKPOINT, SIGTRAP, r.rip, 0);
        }
    }
    fixup_eintr(e, t, &r);
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* wait-status handling                                                                              */

static int on_status(pt_engine *e, int tid, int status);

static int on_exit_status(pt_engine *e, pt_thread *t, int tid, int status)
{
    if (tid == e->pid) { /* the leader is reaped last: the whole process is gone */
        e->exited = 1;
        e->exit_status = status;
        for (int32_t i = 0; i < e->nthreads; i++)
            set_state(e, e->threads[i], PT_GONE);
        return 1;
    }
    if (!t) {
        remember_orphan(e, tid, status);
        return 0;
    }
    set_state(e, t, PT_GONE);
    t->ev_kind = PT_EV_NONE;
    return 0;
}

static int on_event_stop(pt_engine *e, pt_thread *t, int sig)
{
    if (t->awaiting_initial) { /* a seized clone child's first stop (ptrace(2): no SIGSTOP under SEIZE) */
        t->awaiting_initial = 0;
        if (e->dr7)
            apply_debugregs(e, t->tid); /* debug registers are per thread and not inherited */
        return keep_or_resume(e, t);
    }
    if (sig != SIGTRAP) /* group-stop (SIGSTOP/SIGTSTP/...): resuming overrides it, as gdbserver does */
        return keep_or_resume(e, t);
    int ours = t->interrupt_pending;
    t->interrupt_pending = 0;
    if (e->stopping || (ours && e->world_stopped))
        return at_interrupt_stop(e, t);
    /* The interrupt stayed armed while the thread stopped for something else; this is its echo after
     * the resume (DESIGN.md §2.2).  Re-issue the same resume. */
    e->n_stale_stops++;
    return keep_or_resume(e, t);
}

static int on_clone(pt_engine *e, pt_thread *t)
{
    unsigned long newtid = 0;
    int32_t parent = t->tid;
    if (ptrace(PTRACE_GETEVENTMSG, parent, 0, &newtid) == 0 && !find(e, (int32_t)newtid)) {
        pt_thread *n = add_thread(e, (int32_t)newtid, PT_RUNNING);
        if (n) {
            n->awaiting_initial = 1;
            int st;
            if (take_orphan(e, (int)newtid, &st)) /* its first stop came before this event */
                on_status(e, (int)newtid, st);
        }
    }
    return keep_or_resume(e, find(e, parent));
}

/* A fork the caller did not ask to see: take every int3 out of the child and let it go.  For a vfork
 * the memory is shared, so the breakpoints are lifted until PTRACE_EVENT_VFORK_DONE. */
static void release_child(pt_engine *e, pt_thread *parent, int child, int is_vfork)
{
    int st;
    if (!take_orphan(e, child, &st))
        while (waitpid(child, &st, __WALL) < 0 && errno == EINTR)
            ;
    if (is_vfork) {
        write_all_breakpoints(e, e->memfd, 1);
        e->vfork_parent_tid = parent->tid;
    } else if (e->nbps) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", child);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            write_all_breakpoints(e, fd, 1);
            close(fd);
        }
    }
    ptrace(PTRACE_DETACH, child, 0, 0);
}

static int on_fork(pt_engine *e, pt_thread *t, int event)
{
    unsigned long child = 0;
    ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &child);
    int is_vfork = event == PTRACE_EVENT_VFORK;
    if (e->options & PT_OPT_FORK_EVENTS) {
        int st;
        if (!take_orphan(e, (int)child, &st))
            while (waitpid((int)child, &st, __WALL) < 0 && errno == EINTR)
                ;
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, t->tid, 0, &r);
        return record(t, is_vfork ? PT_EV_VFORK : PT_EV_FORK, SIGTRAP, r.rip, child);
    }
    release_child(e, t, (int)child, is_vfork);
    return keep_or_resume(e, t);
}

static int on_vfork_done(pt_engine *e, pt_thread *t)
{
    if (e->vfork_parent_tid == t->tid) {
        e->vfork_parent_tid = 0;
        write_all_breakpoints(e, e->memfd, 0);
        return keep_or_resume(e, t);
    }
    if (e->options & PT_OPT_FORK_EVENTS) {
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, t->tid, 0, &r);
        return record(t, PT_EV_VFORK_DONE, SIGTRAP, r.rip, 0);
    }
    return keep_or_resume(e, t);
}

/* /proc/PID/mem of the process, or of any live thread when the leader is a zombie (its own mem file
 * has no mm then); all threads share one address space. */
static int open_process_mem(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", pid);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        return fd;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    struct dirent *de;
    while (fd < 0 && (de = readdir(d))) {
        int tid = atoi(de->d_name);
        if (tid <= 0 || tid == pid)
            continue;
        snprintf(path, sizeof path, "/proc/%d/task/%d/mem", pid, tid);
        fd = open(path, O_RDWR | O_CLOEXEC);
    }
    closedir(d);
    return fd;
}

static void reopen_memfd(pt_engine *e)
{
    int fd = open_process_mem(e->pid);
    if (fd >= 0) {
        if (e->memfd >= 0)
            close(e->memfd);
        e->memfd = fd;
    }
}

/* execve replaced the image; every other thread is gone and the execing thread now has the leader's
 * tid (ptrace(2), "execve(2) under ptrace").  Old breakpoints and debug registers went with the mm. */
static int on_exec(pt_engine *e, pt_thread *t)
{
    unsigned long former = 0;
    ptrace(PTRACE_GETEVENTMSG, t->tid, 0, &former);
    pt_thread *old = find(e, (int32_t)former);
    int pending = old ? old->interrupt_pending : t->interrupt_pending;
    for (int32_t i = 0; i < e->nthreads; i++)
        if (e->threads[i] != t)
            set_state(e, e->threads[i], PT_GONE);
    t->interrupt_pending = pending;
    t->awaiting_initial = 0;
    t->exiting = 0;
    t->stale_trap = 0;
    e->nbps = 0;
    e->vfork_parent_tid = 0;
    memset(e->dr, 0, sizeof e->dr);
    e->dr7 = 0;
    reopen_memfd(e);
    struct user_regs_struct r;
    ptrace(PTRACE_GETREGS, t->tid, 0, &r);
    return record(t, PT_EV_EXEC, SIGTRAP, r.rip, former);
}

/* DR6 when a single-step trap also hit a hardware breakpoint or watchpoint (B0-B3 set), else 0.
 * The kernel reports such a trap as TRAP_TRACE, not TRAP_HWBKPT (x86 get_si_code() tests BS
 * first), so a step that writes a watched variable looks like a plain step unless DR6 is read. */
static uint64_t step_hit_debugreg(pt_engine *e, int32_t tid)
{
    uint64_t dr6 = 0;
    if (!e->dr7 || pt_get_dr6(tid, &dr6) < 0 || !(dr6 & 0xf))
        return 0;
    ptrace(PTRACE_POKEUSER, tid, (void *)DR_OFFSET(6), 0);
    return dr6;
}

static int on_sigtrap(pt_engine *e, pt_thread *t)
{
    siginfo_t si;
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) < 0 || ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return keep_or_resume(e, t); /* vanished (ESRCH): its exit status follows */
    if (si.si_code == SI_KERNEL && t->stale_trap) { /* the int3 we already counted at an interrupt stop */
        t->stale_trap = 0;
        return keep_or_resume(e, t);
    }
    if (si.si_code == SI_KERNEL && e->nbps && bp_at(e, r.rip - 1)) {
        r.rip -= 1; /* int3 leaves pc one past the breakpoint: rewind at once */
        ptrace(PTRACE_SETREGS, t->tid, 0, &r);
        t->on_breakpoint = 1;
        return record(t, PT_EV_BREAKPOINT, SIGTRAP, r.rip, 0);
    }
    int stepping = t->action == PT_ACT_STEP || t->action == PT_ACT_RANGE;
    if (si.si_code == TRAP_HWBKPT) {
        uint64_t dr6 = 0;
        pt_get_dr6(t->tid, &dr6);
        ptrace(PTRACE_POKEUSER, t->tid, (void *)DR_OFFSET(6), 0);
        if ((dr6 & 0xf) == 0 && stepping) /* only BS (single step) set */
            goto step_done;
        return record(t, PT_EV_HWTRAP, SIGTRAP, r.rip, dr6);
    }
    if (stepping && si.si_code > 0 && si.si_code != SI_KERNEL) {
        uint64_t dr6 = step_hit_debugreg(e, t->tid);
        if (dr6)
            return record(t, PT_EV_HWTRAP, SIGTRAP, r.rip, dr6);
    step_done:
        if (t->action == PT_ACT_RANGE && !e->stopping && !e->world_stopped && r.rip >= t->range_start &&
            r.rip < t->range_end)
            return resume_thread(e, t, 0); /* still inside the range: keep stepping, nothing to report */
        return record(t, PT_EV_STEP, SIGTRAP, r.rip, 0);
    }
    return record(t, PT_EV_SIGNAL, SIGTRAP, r.rip, (uint64_t)si.si_code);
}

static int on_signal(pt_engine *e, pt_thread *t, int sig)
{
    if (sig == SIGTRAP)
        return on_sigtrap(e, t);
    if (sig < 65 && ((e->pass_signals >> (sig - 1)) & 1)) { /* QPassSignals: deliver without a stop */
        t->deliver_sig = sig;
        return keep_or_resume(e, t);
    }
    struct user_regs_struct r;
    uint64_t pc = ptrace(PTRACE_GETREGS, t->tid, 0, &r) == 0 ? r.rip : 0;
    return record(t, PT_EV_SIGNAL, sig, pc, 0);
}

static int on_syscall_stop(pt_engine *e, pt_thread *t)
{
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return keep_or_resume(e, t);
    /* Entry or exit from the kernel itself (ptrace(2), PTRACE_GET_SYSCALL_INFO, Linux 5.3): a
     * toggle goes wrong when catching starts inside a call (after a vfork event) or a thread was
     * stepped or continued through one. The toggle stays as the fallback for older kernels. */
    uint8_t info[88] = {0}; /* struct ptrace_syscall_info; op is its first byte */
    int is_exit = t->in_syscall;
    if (ptrace(PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof info, info) > 0 &&
        (info[0] == 1 || info[0] == 2))
        is_exit = info[0] == 2; /* PTRACE_SYSCALL_INFO_ENTRY 1, _EXIT 2 */
    t->in_syscall = !is_exit;
    return record(t, PT_EV_SYSCALL, is_exit, r.rip, r.orig_rax);
}

/* Classify one wait status.  Returns 1 when a reportable event was recorded on a thread (or the
 * process ended), 0 otherwise.  The thread is resumed again here when nothing is to be reported and
 * the world is running. */
static int on_status(pt_engine *e, int tid, int status)
{
    pt_thread *t = find(e, tid);
    if (WIFEXITED(status) || WIFSIGNALED(status))
        return on_exit_status(e, t, tid, status);
    if (!WIFSTOPPED(status))
        return 0;
    if (!t) {
        if (tgid_of(tid) != e->pid) { /* a fork child or another engine's thread: not ours to handle */
            remember_orphan(e, tid, status);
            return 0;
        }
        t = add_thread(e, tid, PT_RUNNING); /* a clone child seen before its parent's clone event */
        if (!t)
            return 0;
        t->awaiting_initial = 1;
    }
    if (t->state == PT_RUNNING)
        set_state(e, t, PT_STOPPED);
    else if (t->state == PT_EXITING)
        t->state = PT_STOPPED;
    int event = (unsigned)status >> 16;
    int sig = WSTOPSIG(status);
    switch (event) {
    case PTRACE_EVENT_STOP:
        return on_event_stop(e, t, sig);
    case PTRACE_EVENT_CLONE:
        return on_clone(e, t);
    case PTRACE_EVENT_FORK:
    case PTRACE_EVENT_VFORK:
        return on_fork(e, t, event);
    case PTRACE_EVENT_VFORK_DONE:
        return on_vfork_done(e, t);
    case PTRACE_EVENT_EXEC:
        return on_exec(e, t);
    case PTRACE_EVENT_EXIT:
        t->exiting = 1;
        return keep_or_resume(e, t);
    case 0:
        if (sig == (SIGTRAP | 0x80))
            return on_syscall_stop(e, t);
        return on_signal(e, t, sig);
    default:
        return keep_or_resume(e, t);
    }
}

/* Collect every status the kernel has ready, without blocking. */
static int drain(pt_engine *e)
{
    int found = 0, st;
    for (;;) {
        pid_t r = waitpid(-1, &st, __WALL | WNOHANG);
        if (r > 0) {
            found |= on_status(e, r, st);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == ECHILD && !e->exited && e->nrunning > 0) {
            /* no traced child left at all: the process vanished without a status we could see */
            e->exited = 1;
            e->exit_status = 0;
            for (int32_t i = 0; i < e->nthreads; i++)
                set_state(e, e->threads[i], PT_GONE);
            found = 1;
        }
        return found;
    }
}

static void interrupt_running(pt_engine *e);
static int resume_masked(pt_engine *e);
static int wait_resumed(pt_engine *e, int timeout_ms, int extra_fd, int just_resumed);
static int stop_all_masked(pt_engine *e);

/* Threads we wait for but that can no longer stop (a zombie leader, a thread killed by SIGKILL whose
 * status went elsewhere) are marked exiting, so a stop-all never hangs on them. */
static void retire_unstoppable(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->state != PT_RUNNING)
            continue;
        char s = task_state(e->pid, t->tid);
        if (s == 0 || s == 'Z' || s == 'X')
            set_state(e, t, PT_EXITING);
    }
}

/* Wait (blocking, in slices) until no thread is running. */
static int wait_all_stopped(pt_engine *e)
{
    int found = 0;
    while (e->nrunning > 0) {
        found |= drain(e);
        if (e->nrunning <= 0 || e->exited)
            break;
        struct pollfd p = {chld_wakefd, POLLIN, 0};
        int n = sleep_on(e, &p, 1, 100);
        if (n > 0) {
            drain_fd(chld_wakefd);
        } else if (n == 0) { /* 100 ms without a stop: retire what cannot stop, ask the rest again */
            retire_unstoppable(e);
            if (e->stopping)
                interrupt_running(e);
        }
    }
    return found;
}

/* Interrupt every thread we resumed.  A thread whose earlier interrupt may still be armed is
 * interrupted again: any ptrace-stop it entered since consumed that interrupt (the kernel's
 * ptrace_stop() clears a pending STOP trap on every trap), and if it is still armed a second request
 * changes nothing, since the pending trap is one bit.  Either way exactly one PTRACE_EVENT_STOP follows. */
static void interrupt_running(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->state != PT_RUNNING || t->awaiting_initial)
            continue;
        if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) < 0) {
            /* ESRCH: the thread is exiting; its exit status (not a stop) will come */
            set_state(e, t, PT_EXITING);
            continue;
        }
        t->interrupt_pending = 1;
        e->n_interrupts++;
    }
}

static int stop_all_masked(pt_engine *e)
{
    uint64_t t0 = pt_now_ns();
    e->stopping = 1;
    interrupt_running(e);
    int found = wait_all_stopped(e);
    e->stopping = 0;
    e->world_stopped = 1;
    e->last_stop_ns = pt_now_ns() - t0;
    e->n_stops++;
    return found;
}

static int has_event(pt_thread *t)
{
    return t->ev_kind != PT_EV_NONE && t->state != PT_GONE;
}

/* Pick the event to report: the thread GDB last stepped if it has one, else a random one, so no
 * thread starves when many hit at once (gdbserver's select_event_lwp). */
static int choose_report(pt_engine *e, int only_resumed)
{
    if (e->exited) {
        e->report_tid = e->pid;
        e->reported = NULL;
        return 1;
    }
    int32_t count = 0;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (!has_event(t) || (only_resumed && t->action == PT_ACT_NONE))
            continue;
        if (t->tid == e->last_stepped_tid) {
            e->report_tid = t->tid;
            e->reported = t;
            return 1;
        }
        count++;
    }
    if (!count)
        return 0;
    int32_t pick = (int32_t)(next_random(e) % (uint64_t)count);
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (!has_event(t) || (only_resumed && t->action == PT_ACT_NONE))
            continue;
        if (pick-- == 0) {
            e->report_tid = t->tid;
            e->reported = t;
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* step over a breakpoint with every other thread held stopped                                       */

static int step_over(pt_engine *e, pt_thread *t, uint64_t pc)
{
    pt_breakpoint *b = bp_at(e, pc);
    if (!b)
        return 0;
    int rc = poke_byte(e->memfd, pc, b->orig);
    if (rc < 0)
        return rc;
    int reported = 0, tid = t->tid;
    for (;;) {
        if (ptrace(PTRACE_SINGLESTEP, tid, 0, 0) < 0) {
            set_state(e, t, PT_EXITING);
            break;
        }
        int st;
        pid_t r;
        while ((r = waitpid(tid, &st, __WALL)) < 0 && errno == EINTR)
            ;
        if (r < 0) {
            set_state(e, t, PT_EXITING);
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            reported = on_exit_status(e, t, tid, st);
            break;
        }
        int event = (unsigned)st >> 16, sig = WSTOPSIG(st);
        if (event == PTRACE_EVENT_STOP) { /* the echo of an old interrupt, in place of the step trap */
            t->interrupt_pending = 0;
            e->n_stale_stops++;
            continue;
        }
        if (event == PTRACE_EVENT_CLONE) {
            unsigned long nt = 0;
            ptrace(PTRACE_GETEVENTMSG, tid, 0, &nt);
            if (!find(e, (int32_t)nt)) {
                pt_thread *n = add_thread(e, (int32_t)nt, PT_RUNNING);
                if (n)
                    n->awaiting_initial = 1;
            }
            t = find(e, tid);
            continue;
        }
        if (event == PTRACE_EVENT_EXIT) {
            t->exiting = 1;
            break;
        }
        if (event != 0) { /* exec, fork, vfork: handled the usual way, world held */
            e->world_stopped = 1;
            reported = on_status(e, tid, st);
            t = find(e, tid);
            break;
        }
        if (sig == SIGTRAP) {
            siginfo_t si;
            ptrace(PTRACE_GETSIGINFO, tid, 0, &si);
            if (si.si_code == SI_KERNEL && t->stale_trap) {
                t->stale_trap = 0;
                continue;
            }
            uint64_t dr6 = step_hit_debugreg(e, tid);
            if (dr6) { /* the stepped instruction hit a watchpoint: report it, world held */
                struct user_regs_struct r2;
                ptrace(PTRACE_GETREGS, tid, 0, &r2);
                reported = record(t, PT_EV_HWTRAP, SIGTRAP, r2.rip, dr6);
            }
            break; /* the step is done */
        }
        if (sig < 65 && ((e->pass_signals >> (sig - 1)) & 1)) {
            t->deliver_sig = sig; /* delivered with the real resume */
            continue;
        }
        struct user_regs_struct r2;
        ptrace(PTRACE_GETREGS, tid, 0, &r2);
        reported = record(t, PT_EV_SIGNAL, sig, r2.rip, 0);
        break;
    }
    if (bp_at(e, pc) && e->vfork_parent_tid == 0)
        poke_byte(e->memfd, pc, INT3);
    return reported;
}

/* ------------------------------------------------------------------------------------------------ */
/* resume / wait                                                                                     */

static int resume_masked(pt_engine *e)
{
    pt_prune(e);
    if (e->exited)
        return choose_report(e, 0);
    /* No phantom hits: a hit whose breakpoint is gone when its thread is resumed reports nothing.
     * Only resumed threads are checked: GDB lifts the breakpoint under the thread it steps over it
     * (vCont;s:tid) while other threads' hits on it wait, and re-inserts it before continuing. */
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->ev_kind == PT_EV_BREAKPOINT && t->action != PT_ACT_NONE && !bp_at(e, t->ev_pc))
            t->ev_kind = PT_EV_NONE;
    }
    if (choose_report(e, 1)) /* a resumed thread has an event waiting: report it, run nothing */
        return 1;
    e->last_stepped_tid = 0;
    int any = 0;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->state != PT_STOPPED || t->action == PT_ACT_NONE)
            continue;
        any = 1;
        if (t->action != PT_ACT_CONT)
            e->last_stepped_tid = t->tid;
        /* Only a thread that reported an int3 (pc rewound) and was not moved since sits on a
         * breakpoint; any other thread at a breakpoint address has not executed it yet and must. */
        if (t->exiting || !e->nbps || e->vfork_parent_tid || !t->on_breakpoint)
            continue;
        /* A step with a signal enters the handler first (GDB's vCont;S: it steps into the handler
         * and lets the breakpoint hit again when the handler returns). A continue with a signal
         * still steps over first and delivers the signal with the real resume. */
        if (t->action == PT_ACT_STEP && t->action_sig)
            continue;
        struct user_regs_struct r;
        if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0 || !bp_at(e, r.rip))
            continue;
        int32_t tid = t->tid;
        int got = step_over(e, t, r.rip);
        t = find(e, tid);
        if (!got && t && t->state == PT_STOPPED && !t->exiting && t->action != PT_ACT_CONT) {
            ptrace(PTRACE_GETREGS, t->tid, 0, &r);
            if (t->action == PT_ACT_STEP || r.rip < t->range_start || r.rip >= t->range_end)
                record(t, PT_EV_STEP, SIGTRAP, r.rip, 0);
        }
    }
    if (e->nrunning > 0) { /* clone children born during a step-over: hold them stopped too */
        e->stopping = 1;
        wait_all_stopped(e);
        e->stopping = 0;
    }
    pt_prune(e);
    if (e->exited || choose_report(e, 1)) { /* a resumed thread's event, never a held thread's */
        e->world_stopped = 1;
        return e->exited ? choose_report(e, 0) : 1;
    }
    if (!any)
        return -EDEADLK; /* nothing to run */
    e->world_stopped = 0;
    int boost = e->nthreads > 2 ? boost_begin() : NOT_BOOSTED;
    int rc = 0;
    for (int32_t i = 0; i < e->nthreads && rc == 0; i++) {
        pt_thread *t = e->threads[i];
        if (t->state != PT_STOPPED || t->action == PT_ACT_NONE)
            continue;
        int sig = t->deliver_sig ? t->deliver_sig : t->action_sig;
        t->deliver_sig = 0;
        t->action_sig = 0;
        rc = resume_thread(e, t, sig);
    }
    boost_end(boost);
    return rc;
}

static int report_interrupt(pt_engine *e)
{
    /* A stopped thread with nothing pending: one that was resumed (with scheduler-locking only those
     * ran, and the kernel gives a process-directed SIGINT only to a running thread), the leader if
     * it can be. */
    pt_thread *pick = NULL;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->state != PT_STOPPED || t->ev_kind != PT_EV_NONE)
            continue;
        int ran = t->action != PT_ACT_NONE, pick_ran = pick && pick->action != PT_ACT_NONE;
        if (!pick || (ran && !pick_ran) || (ran == pick_ran && t->tid == e->pid))
            pick = t;
    }
    if (!pick)
        return 0;
    struct user_regs_struct r;
    uint64_t pc = ptrace(PTRACE_GETREGS, pick->tid, 0, &r) == 0 ? r.rip : 0;
    record(pick, PT_EV_INTERRUPT, 0, pc, 0);
    e->report_tid = pick->tid;
    e->reported = pick;
    return 1;
}

/* Wait for the next reportable event with the world running.  Returns 1 when an event is to be
 * reported (every thread stopped, e->report_tid set), 0 on timeout, 2 when extra_fd is readable
 * (world still running), 3 when no thread is running, or -errno. */
static int wait_masked(pt_engine *e, int timeout_ms, int extra_fd)
{
    return wait_resumed(e, timeout_ms, extra_fd, 0);
}

/* just_resumed: the world was resumed a moment ago, so the first look at waitpid would find nothing;
 * sleep first (a stop that came already has its SIGCHLD pending and ends the sleep at once). */
static int wait_resumed(pt_engine *e, int timeout_ms, int extra_fd, int just_resumed)
{
    uint64_t deadline = timeout_ms >= 0 ? pt_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    for (int first = 1;; first = 0) {
        uint64_t requests;
        if (read(e->wakefd, &requests, sizeof requests) == sizeof requests)
            e->stop_requested = 1; /* looked at every round: a stream of hits must not starve it */
        if (!(first && just_resumed) && (drain(e) || e->exited)) {
            if (!e->exited)
                stop_all_masked(e);
            pt_prune(e);
            e->world_stopped = 1;
            if (e->stop_requested && !e->exited && report_interrupt(e)) {
                e->stop_requested = 0; /* the hits stay pending for the next resumes */
                return 1;
            }
            e->stop_requested = 0;
            /* Only threads GDB resumed report (gdbserver's status_pending_p_callback skips the
             * others): a thread scheduler-locking holds keeps its pending hit for later. */
            if (choose_report(e, 1) || choose_report(e, 0))
                return 1;
            /* the event went away while stopping (its thread died): run the world again */
            int rc = resume_masked(e);
            if (rc != 0)
                return rc == -EDEADLK ? 3 : rc;
            continue;
        }
        if (e->stop_requested) { /* the wake-up fd was already read at the top of this round */
            e->stop_requested = 0;
            stop_all_masked(e);
            pt_prune(e);
            if (report_interrupt(e) || choose_report(e, 1) || choose_report(e, 0)) /* hits stay pending */
                return 1;
        }
        if (e->nrunning <= 0) {
            /* A zombie leader (it exited while held threads live on) gives no status until they
             * are gone: nothing can come, as gdbserver says with N (no-unwaited-for-left.exp). */
            int exiting = 0;
            for (int32_t i = 0; i < e->nthreads; i++) {
                pt_thread *t = e->threads[i];
                if (t->state == PT_EXITING && !(t->tid == e->pid && task_state(e->pid, t->tid) == 'Z'))
                    exiting = 1;
            }
            if (!exiting)
                return 3;
        }
        struct pollfd p[3] = {{chld_wakefd, POLLIN, 0}, {e->wakefd, POLLIN, 0}, {extra_fd, POLLIN, 0}};
        int wait_ms = -1;
        if (timeout_ms >= 0) {
            uint64_t now = pt_now_ns();
            if (now >= deadline)
                return 0;
            wait_ms = (int)((deadline - now + 999999) / 1000000);
        }
        int n = sleep_on(e, p, extra_fd >= 0 ? 3 : 2, wait_ms);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0)
            continue;
        if (p[0].revents)
            drain_fd(chld_wakefd);
        if (p[1].revents)
            e->stop_requested = 1;
        if (extra_fd >= 0 && p[2].revents && !drain(e) && !e->stop_requested)
            return 2;
    }
}

/* Give every thread the same action (signals set by the caller are kept). */
int pt_set_actions(pt_engine *e, int action)
{
    for (int32_t i = 0; i < e->nthreads; i++)
        e->threads[i]->action = action;
    return 0;
}

/* The hot path of `Inferior.cont()`: resume every thread and wait, in one call. */
static int cont_masked(pt_engine *e, int timeout_ms, int extra_fd)
{
    pt_set_actions(e, PT_ACT_CONT);
    int rc = resume_masked(e);
    if (rc != 0)
        return rc;
    return wait_resumed(e, timeout_ms, extra_fd, 1);
}

/* Thread-safe: may be called from any thread; the tracer thread acts on it in pt_wait. */
int pt_request_stop(pt_engine *e)
{
    uint64_t one = 1;
    return write(e->wakefd, &one, sizeof one) == sizeof one ? 0 : -errno;
}

int pt_set_options(pt_engine *e, int options)
{
    e->options = options;
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* launch, attach, detach, kill                                                                      */

#define SEIZE_OPTIONS                                                                                  \
    (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_TRACEFORK |               \
     PTRACE_O_TRACEVFORK | PTRACE_O_TRACEVFORKDONE | PTRACE_O_TRACESYSGOOD)

static void child_fail(int fd, int stage)
{
    int err[2] = {stage, errno};
    (void)!write(fd, err, sizeof err);
    _exit(127);
}

/* Fork and exec `path`, traced from its first instruction: the child stops itself, we seize it, and
 * it runs on to the PTRACE_EVENT_EXEC stop.  Returns 0 with *pid_out set and the child stopped at the
 * exec event, or -errno (stage-specific errors are reported through the pipe). */
int pt_launch(const char *path, char *const argv[], char *const envp[], const char *cwd, int flags,
              int stdin_fd, int stdout_fd, int stderr_fd, int32_t *pid_out)
{
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(errpipe[0]);
        close(errpipe[1]);
        return -err;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL); /* Python ignores these; a fresh program must not inherit that */
        signal(SIGXFSZ, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        if (flags & PT_LAUNCH_SETPGID)
            setpgid(0, 0);
        if (flags & PT_LAUNCH_NO_ASLR)
            personality(ADDR_NO_RANDOMIZE);
        if (stdin_fd >= 0 && dup2(stdin_fd, 0) < 0)
            child_fail(errpipe[1], 1);
        if (stdout_fd >= 0 && dup2(stdout_fd, 1) < 0)
            child_fail(errpipe[1], 1);
        if (stderr_fd >= 0 && dup2(stderr_fd, 2) < 0)
            child_fail(errpipe[1], 1);
        if (cwd && chdir(cwd) < 0)
            child_fail(errpipe[1], 2);
        raise(SIGSTOP);
        execve(path, argv, envp);
        child_fail(errpipe[1], 3);
    }
    close(errpipe[1]);
    int st, rc = 0;
    if (waitpid(pid, &st, WUNTRACED) < 0 || !WIFSTOPPED(st)) {
        rc = -ECHILD;
        goto fail;
    }
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(uintptr_t)(SEIZE_OPTIONS | PTRACE_O_EXITKILL)) < 0) {
        rc = -errno;
        goto fail;
    }
    kill(pid, SIGCONT);
    for (;;) {
        if (waitpid(pid, &st, __WALL) < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            goto fail;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            int err[2] = {0, 0};
            rc = read(errpipe[0], err, sizeof err) == sizeof err ? -err[1] : -ECHILD;
            close(errpipe[0]);
            return rc ? rc : -ECHILD;
        }
        if ((unsigned)st >> 16 == PTRACE_EVENT_EXEC)
            break;
        /* the group-stop and SIGCONT of the hand-over: swallow them, the program never sees them */
        int sig = WSTOPSIG(st);
        int deliver = ((unsigned)st >> 16) == 0 && sig != SIGSTOP && sig != SIGCONT ? sig : 0;
        ptrace(PTRACE_CONT, pid, 0, (void *)(uintptr_t)deliver);
    }
    close(errpipe[0]);
    *pid_out = pid;
    return 0;
fail:
    kill(pid, SIGKILL);
    waitpid(pid, &st, __WALL);
    close(errpipe[0]);
    return rc;
}

pt_engine *pt_engine_new(int32_t pid, uint64_t seed)
{
    if (install_sigchld_wakeup() < 0)
        return NULL;
    pt_engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->pid = pid;
    e->rng = seed ? seed : 0x2545f4914f6cdd1dull;
    e->memfd = -1;
    e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->options = PT_OPT_EINTR_FIXUP;
    sigset_t current;
    pthread_sigmask(SIG_SETMASK, NULL, &current);
    set_sleep_mask(e, &current);
    reopen_memfd(e); /* may fail before an attach is permitted; pt_attach_all opens it again */
    hash_rebuild(e);
    if (e->wakefd < 0) {
        pt_engine_free(e);
        return NULL;
    }
    return e;
}

void pt_engine_free(pt_engine *e)
{
    if (!e)
        return;
    for (int32_t i = 0; i < e->nthreads; i++)
        free(e->threads[i]);
    free(e->threads);
    free(e->hash);
    free(e->bps);
    if (e->memfd >= 0)
        close(e->memfd);
    if (e->wakefd >= 0)
        close(e->wakefd);
    free(e);
}

int pt_adopt_launched(pt_engine *e)
{
    e->launched = 1;
    if (!add_thread(e, e->pid, PT_STOPPED))
        return -ENOMEM;
    e->world_stopped = 1;
    return 0;
}

/* A fork child reported to the caller: already traced and stopped at its first stop.  It inherits
 * the parent's breakpoint table, since its memory is a copy holding the same int3 bytes. */
int pt_adopt_child(pt_engine *child, const pt_engine *parent)
{
    child->launched = parent->launched;
    child->options = parent->options;
    child->pass_signals = parent->pass_signals;
    if (!add_thread(child, child->pid, PT_STOPPED))
        return -ENOMEM;
    if (parent->nbps) {
        child->bps = malloc((size_t)parent->nbps * sizeof *child->bps);
        if (!child->bps)
            return -ENOMEM;
        memcpy(child->bps, parent->bps, (size_t)parent->nbps * sizeof *child->bps);
        child->nbps = child->bpcap = parent->nbps;
    }
    child->world_stopped = 1;
    return 0;
}

/* Seize every thread of e->pid, rescanning /proc/PID/task until a pass finds nothing new (threads
 * can be born during the scan; new ones are auto-attached through PTRACE_O_TRACECLONE anyway). */
static int attach_all_masked(pt_engine *e)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", e->pid);
    int passes = 0, seized_any = 0;
    for (;;) {
        DIR *d = opendir(path);
        if (!d)
            return seized_any ? 0 : -ESRCH;
        int fresh = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            int tid = atoi(de->d_name);
            if (tid <= 0 || find(e, tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(uintptr_t)SEIZE_OPTIONS) < 0) {
                int err = errno;
                char s = task_state(e->pid, tid);
                if (err == ESRCH || s == 'Z' || s == 'X' || s == 0)
                    continue; /* died meanwhile, or a zombie (a leader that exited first) */
                if (err == EPERM && seized_any) {
                    /* already ours: a clone child auto-attached since the last pass */
                    pt_thread *t = add_thread(e, tid, PT_RUNNING);
                    if (t)
                        t->awaiting_initial = 1;
                    continue;
                }
                closedir(d);
                return -err;
            }
            seized_any = 1;
            fresh = 1;
            pt_thread *t = add_thread(e, tid, PT_RUNNING);
            if (!t) {
                closedir(d);
                return -ENOMEM;
            }
            if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) == 0)
                t->interrupt_pending = 1;
        }
        closedir(d);
        if (!fresh && ++passes >= 2)
            break;
        if (fresh)
            passes = 0;
    }
    if (!seized_any)
        return -ESRCH;
    if (e->memfd < 0)
        reopen_memfd(e);
    e->stopping = 1;
    wait_all_stopped(e);
    e->stopping = 0;
    e->world_stopped = 1;
    /* Events collected during the attach (a breakpoint cannot exist yet; signals can) stay pending. */
    return e->nthreads;
}

/* Consume a SIGTRAP still queued for an int3 we already reported; delivered after detach it would
 * kill the program. */
static void flush_stale_trap(pt_engine *e, pt_thread *t)
{
    for (int tries = 0; t->stale_trap && tries < 4; tries++) {
        if (ptrace(PTRACE_CONT, t->tid, 0, 0) < 0)
            return;
        int st;
        if (waitpid(t->tid, &st, __WALL) < 0 || !WIFSTOPPED(st))
            return;
        siginfo_t si;
        if (((unsigned)st >> 16) == 0 && WSTOPSIG(st) == SIGTRAP &&
            ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) == 0 && si.si_code == SI_KERNEL)
            t->stale_trap = 0;
    }
    (void)e;
}

int pt_detach(pt_engine *e)
{
    if (e->exited)
        return 0;
    if (!e->world_stopped)
        stop_all_masked(e);
    write_all_breakpoints(e, e->memfd, 1);
    e->nbps = 0;
    if (e->dr7) {
        uint64_t zero[4] = {0, 0, 0, 0};
        pt_set_debugregs(e, zero, 0);
    }
    /* non-leaders first, the leader last (gdbserver's order: the leader may be reaped otherwise) */
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t i = 0; i < e->nthreads; i++) {
            pt_thread *t = e->threads[i];
            if ((pass == 0) == (t->tid == e->pid) || t->state == PT_GONE)
                continue;
            if (t->state == PT_STOPPED)
                flush_stale_trap(e, t);
            int sig = t->deliver_sig;
            if (!sig && t->ev_kind == PT_EV_SIGNAL && t->ev_sig != SIGTRAP)
                sig = t->ev_sig; /* a signal we held back is the program's: hand it over */
            if (sig == SIGSTOP)
                sig = 0;
            ptrace(PTRACE_DETACH, t->tid, 0, (void *)(uintptr_t)sig);
            set_state(e, t, PT_GONE);
        }
    }
    pt_prune(e);
    return 0;
}

int pt_kill(pt_engine *e)
{
    if (e->exited)
        return 0;
    kill(e->pid, SIGKILL);
    /* Threads in a ptrace-stop (an exit stop, or stopped by us) are let go so that they can die; a
     * wait that never blocks for long keeps a vanished status from hanging us (DESIGN.md §2.8). */
    for (int32_t i = 0; i < e->nthreads; i++)
        if (e->threads[i]->state != PT_GONE)
            ptrace(PTRACE_CONT, e->threads[i]->tid, 0, 0);
    sigset_t old;
    block_sigchld(&old);
    set_sleep_mask(e, &old);
    uint64_t deadline = pt_now_ns() + 5000000000ull;
    while (!e->exited && pt_now_ns() < deadline) {
        int st;
        pid_t r = waitpid(-1, &st, __WALL | WNOHANG);
        if (r < 0 && errno != EINTR)
            break; /* ECHILD: nothing of ours is left */
        if (r <= 0) {
            struct pollfd p = {chld_wakefd, POLLIN, 0};
            if (sleep_on(e, &p, 1, 50) > 0)
                drain_fd(chld_wakefd);
            continue;
        }
        pt_thread *t = find(e, r);
        if (WIFEXITED(st) || WIFSIGNALED(st))
            on_exit_status(e, t, r, st);
        else if (t || r == e->pid || tgid_of(r) == e->pid)
            ptrace(PTRACE_CONT, r, 0, 0); /* an exit stop, or a clone child's first stop: let it die */
        else
            remember_orphan(e, r, st);
    }
    restore_mask(&old);
    e->exited = 1;
    return 0;
}

/* Benchmark helper: with the world running, time `rounds` stop-all and stop-all + resume cycles. */
static int measure_stop_all_masked(pt_engine *e, int rounds, uint64_t *stop_ns, uint64_t *cycle_ns)
{
    for (int i = 0; i < rounds; i++) {
        uint64_t t0 = pt_now_ns();
        stop_all_masked(e);
        uint64_t t1 = pt_now_ns();
        for (int32_t j = 0; j < e->nthreads; j++) {
            pt_thread *t = e->threads[j];
            if (t->state == PT_STOPPED && t->ev_kind == PT_EV_NONE) {
                t->action = PT_ACT_CONT;
                resume_thread(e, t, t->deliver_sig);
                t->deliver_sig = 0;
            }
        }
        e->world_stopped = 0;
        uint64_t t2 = pt_now_ns();
        stop_ns[i] = t1 - t0;
        cycle_ns[i] = t2 - t0;
        drain(e);
    }
    return rounds;
}

int pt_stop_all(pt_engine *e)
{
    WITH_SIGCHLD_BLOCKED(stop_all_masked(e));
}

int pt_resume(pt_engine *e)
{
    WITH_SIGCHLD_BLOCKED(resume_masked(e));
}

int pt_wait(pt_engine *e, int timeout_ms, int extra_fd)
{
    WITH_SIGCHLD_BLOCKED(wait_masked(e, timeout_ms, extra_fd));
}

int pt_cont(pt_engine *e, int timeout_ms, int extra_fd)
{
    WITH_SIGCHLD_BLOCKED(cont_masked(e, timeout_ms, extra_fd));
}

int pt_attach_all(pt_engine *e)
{
    WITH_SIGCHLD_BLOCKED(attach_all_masked(e));
}

int pt_measure_stop_all(pt_engine *e, int rounds, uint64_t *stop_ns, uint64_t *cycle_ns)
{
    WITH_SIGCHLD_BLOCKED(measure_stop_all_masked(e, rounds, stop_ns, cycle_ns));
}
