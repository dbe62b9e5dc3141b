/* ref_tracer.c - the plain C reference tracer that ptstub's all-stop engine is measured against.
 *
 * Build:  cc -O2 -Wall -o ref_tracer ref_tracer.c      (bench/bench_engine.py does this itself)
 *
 * Modes:
 *   ref_tracer hits [--threads N] (--bp-offset HEX | --bp-addr HEX) [--seconds S | --count H]
 *                   [--no-stop-all] [--expect E] [--] PROG [ARGS...]
 *       Launches PROG (fork, child waits on a pipe, PTRACE_SEIZE with TRACECLONE|TRACEEXEC|TRACEEXIT|EXITKILL,
 *       address-space randomisation off like gdbserver and ptstub, run to the exec event), puts an int3 on the
 *       breakpoint address and runs the full all-stop cycle per hit (docs/kernel-facts.md §2):
 *         wait for a hit -> PTRACE_INTERRUPT every other running thread and wait for each, keeping other hits
 *         pending -> report one hit (chosen at random among the pending ones) -> if hits are still pending,
 *         report the next one without resuming anything -> otherwise step every reported thread over the
 *         breakpoint with all the others held (restore the byte, PTRACE_SINGLESTEP, re-insert) and resume all.
 *       --bp-offset is the breakpoint's offset from the load base of PROG's main executable (the start of its
 *       first mapping with file offset 0 in /proc/PID/maps, read at the exec stop); for a PIE that is the
 *       symbol's st_value, which bench_engine.py reads with pyelftools.  --bp-addr is an absolute address
 *       (non-PIE executables).  --no-stop-all leaves the other threads running (the bare breakpoint cycle; only
 *       exact with one thread hitting the breakpoint).  --seconds stops counting S seconds after the first hit,
 *       --count after H hits; without either the program runs to its end (--expect E checks the total).
 *       Threads may come and go all the time (`stress --churn S`): gone threads leave the table at each resume.
 *       Last line:  hits=<n> seconds=<s> hits_per_s=<x>   (rate over the first..last hit interval)
 *
 *   ref_tracer stopall [--threads N] [--busy K] [--rounds R] [--gap-us G] [--fifo] [--] PROG [ARGS...]
 *       Launches PROG (a `spin`-like program: prints "ready" once its threads run, exits at stdin EOF), waits
 *       for "ready", then R times: PTRACE_INTERRUPT every thread and wait until all are stopped (t1), PTRACE_CONT
 *       them all (t2).  Prints the per-round samples and min/median/max in microseconds of t1 (interrupt ->
 *       all stopped) and t2 (stop + resume).  --fifo runs the tracer SCHED_FIFO (root only) so that busy threads
 *       cannot preempt it while it resumes them.  --threads/--busy are informational (they belong to PROG).
 *
 *   ref_tracer attach --pid P
 *       PTRACE_SEIZE every task in /proc/P/task and PTRACE_INTERRUPT it at once, rescanning until two passes find
 *       nothing new, then waits until every traced thread is stopped; prints the elapsed microseconds, then
 *       detaches (non-leader threads first).  Last line:  threads=<n> passes=<p> attach_us=<x>
 *
 * Plain C99 + POSIX, Linux x86-64 only.  Every process it launches has PTRACE_O_EXITKILL, so killing this
 * tracer kills its target; an attached process is detached by the kernel if the tracer dies.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#ifndef __WALL
#define __WALL 0x40000000
#endif
#define LAUNCH_OPTS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT | PTRACE_O_EXITKILL)
#define ATTACH_OPTS (PTRACE_O_TRACECLONE | PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT)
#define RIP_OFFSET offsetof(struct user, regs.rip)
#define MAXT 65536

#define DIE(...)                                                                                                  \
    do {                                                                                                          \
        int e_ = errno;                                                                                           \
        fprintf(stderr, "ref_tracer: ");                                                                          \
        fprintf(stderr, __VA_ARGS__);                                                                             \
        fprintf(stderr, " (errno %d: %s)\n", e_, strerror(e_));                                                   \
        cleanup_and_exit(2);                                                                                      \
    } while (0)

enum { RUNNING = 0, STOPPED = 1, GONE = 2 };

typedef struct {
    pid_t tid;
    uint8_t state;
    uint8_t intr;       /* stop expected: PTRACE_INTERRUPT sent, or a new thread's initial stop still to come */
    uint8_t newborn;    /* PTRACE_EVENT_CLONE seen, the new thread's initial PTRACE_EVENT_STOP not yet */
    uint8_t pending;    /* unreported breakpoint hit, PC already rewound */
    uint8_t needs_step; /* reported hit: step over the breakpoint before it runs again */
    uint8_t stale_trap; /* hit taken from an interrupt stop at bp+1: its queued SIGTRAP follows the next resume */
    int sig;            /* signal to deliver on resume */
} thr_t;

typedef struct {
    long interrupts, hits_while_stopping, hidden_hits, late_stops, stale_traps, step_retries, clones;
} stats_t;

/* The tracer's whole state; one instance, passed around implicitly as a file-scope object because the
 * tracer is a single-purpose program and every function works on the one traced process. */
static struct {
    pid_t pid;        /* traced process (thread group leader) */
    pid_t launched;   /* nonzero when we launched it: killed on error */
    int leader_gone;  /* the leader's exit status was collected */
    thr_t *t;         /* thread table */
    int n;
    int32_t *idx;     /* tid -> index + 1 */
    int pid_max;
    uint64_t bp;      /* breakpoint address, 0 if none */
    long bp_orig, bp_trap;
    uint32_t rng;
    stats_t st;
} E;

static void cleanup_and_exit(int code);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static pid_t xwait(pid_t who, int *status, int flags)
{
    pid_t r;
    do
        r = waitpid(who, status, flags | __WALL);
    while (r == -1 && errno == EINTR);
    return r;
}

/* ---------------------------------------------------------------- thread table */

static void table_init(void)
{
    FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
    E.pid_max = 4194304;
    if (f) {
        if (fscanf(f, "%d", &E.pid_max) != 1)
            E.pid_max = 4194304;
        fclose(f);
    }
    E.idx = calloc((size_t)E.pid_max + 1, sizeof *E.idx);
    E.t = calloc(MAXT, sizeof *E.t);
    if (!E.idx || !E.t)
        DIE("out of memory");
    E.rng = (uint32_t)now_ns() | 1;
}

static thr_t *find(pid_t tid)
{
    if (tid <= 0 || tid > E.pid_max || !E.idx[tid])
        return NULL;
    return &E.t[E.idx[tid] - 1];
}

static thr_t *add(pid_t tid, int state)
{
    thr_t *t = find(tid);
    if (!t) {
        if (E.n >= MAXT)
            DIE("more than %d threads", MAXT);
        t = &E.t[E.n++];
        E.idx[tid] = E.n;
    }
    memset(t, 0, sizeof *t);
    t->tid = tid;
    t->state = (uint8_t)state;
    return t;
}

static int count_state(int state)
{
    int n = 0;
    for (int i = 0; i < E.n; i++)
        n += E.t[i].state == state;
    return n;
}

/* ---------------------------------------------------------------- registers, memory, breakpoint */

static uint64_t get_pc(pid_t tid)
{
    errno = 0;
    long v = ptrace(PTRACE_PEEKUSER, tid, (void *)RIP_OFFSET, 0);
    if (v == -1 && errno)
        return 0; /* ESRCH: the thread vanished (killed); callers treat PC 0 as "not at the breakpoint" */
    return (uint64_t)v;
}

static void set_pc(pid_t tid, uint64_t pc)
{
    if (ptrace(PTRACE_POKEUSER, tid, (void *)RIP_OFFSET, (void *)pc) == -1 && errno != ESRCH)
        DIE("POKEUSER rip %d", tid);
}

static void poke_bp(pid_t via, int trap)
{
    if (ptrace(PTRACE_POKEDATA, via, (void *)E.bp, (void *)(trap ? E.bp_trap : E.bp_orig)) == -1)
        DIE("POKEDATA %#llx", (unsigned long long)E.bp);
}

static void insert_breakpoint(pid_t via, uint64_t addr)
{
    E.bp = addr;
    errno = 0;
    E.bp_orig = ptrace(PTRACE_PEEKDATA, via, (void *)addr, 0);
    if (E.bp_orig == -1 && errno)
        DIE("PEEKDATA %#llx (is the breakpoint address mapped?)", (unsigned long long)addr);
    E.bp_trap = (long)(((unsigned long)E.bp_orig & ~0xfful) | 0xccul);
    poke_bp(via, 1);
}

/* At an interrupt stop with PC == bp+1, the thread may have executed the int3 just as it was interrupted, with
 * the SIGTRAP still queued (docs/kernel-facts.md §2.3) -- or it may simply be at the instruction after a
 * one-byte first instruction (push %rbp).  PTRACE_PEEKSIGINFO on the thread's private queue tells them apart;
 * only needed in the rare bp+1 case. */
static int sigtrap_queued(pid_t tid)
{
    struct {
        uint64_t off;
        uint32_t flags;
        int32_t nr;
    } arg = {0, 0, 8};
    siginfo_t si[8];
    long n = ptrace(0x4209 /* PTRACE_PEEKSIGINFO */, tid, &arg, si);
    for (long i = 0; i < n; i++)
        if (si[i].si_signo == SIGTRAP)
            return 1;
    return 0;
}

static void resume(thr_t *t, int sig)
{
    if (ptrace(PTRACE_CONT, t->tid, 0, (void *)(long)sig) == -1 && errno != ESRCH)
        DIE("PTRACE_CONT %d", t->tid);
    t->state = RUNNING;
    t->sig = 0;
}

/* ---------------------------------------------------------------- launch, kill */

static pid_t launch(char **argv, int stdin_fd, int stdout_fd)
{
    int go[2];
    if (pipe(go) == -1)
        DIE("pipe");
    pid_t pid = fork();
    if (pid == -1)
        DIE("fork");
    if (pid == 0) {
        close(go[1]);
        personality(ADDR_NO_RANDOMIZE);
        if (stdin_fd >= 0)
            dup2(stdin_fd, 0);
        if (stdout_fd >= 0)
            dup2(stdout_fd, 1);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(126);
        close(go[0]);
        execvp(argv[0], argv);
        fprintf(stderr, "ref_tracer: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(go[0]);
    E.pid = E.launched = pid;
    if (ptrace(PTRACE_SEIZE, pid, 0, (void *)(long)LAUNCH_OPTS) == -1)
        DIE("PTRACE_SEIZE %d", pid);
    if (write(go[1], "g", 1) != 1)
        DIE("write");
    close(go[1]);
    for (;;) { /* run to the exec event: the program is then stopped at the loader's entry */
        int st;
        if (xwait(pid, &st, 0) == -1)
            DIE("waitpid");
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            E.launched = 0;
            fprintf(stderr, "ref_tracer: %s ended before exec\n", argv[0]);
            exit(2);
        }
        int ev = (unsigned)st >> 16;
        if (ev == PTRACE_EVENT_EXEC)
            break;
        ptrace(PTRACE_CONT, pid, 0, (void *)(long)(ev ? 0 : WSTOPSIG(st)));
    }
    add(pid, STOPPED);
    return pid;
}

/* With PTRACE_O_TRACEEXIT every thread parks in PTRACE_EVENT_EXIT even after SIGKILL, so continue those. */
static void kill_and_reap(void)
{
    if (!E.launched)
        return;
    kill(E.launched, SIGKILL);
    int st;
    pid_t r;
    while ((r = xwait(-1, &st, 0)) > 0)
        if (WIFSTOPPED(st))
            ptrace(PTRACE_CONT, r, 0, 0);
    E.launched = 0;
}

static void cleanup_and_exit(int code)
{
    kill_and_reap();
    exit(code);
}

static uint64_t exe_load_base(pid_t pid)
{
    char path[64], exe[4096], line[4608];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n <= 0)
        DIE("readlink %s", path);
    exe[n] = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        DIE("open %s", path);
    uint64_t base = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long start, end, off;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%llx-%llx %7s %llx %*s %*s %n", &start, &end, perms, &off, &name_at) < 4 || !name_at)
            continue;
        char *name = line + name_at;
        name[strcspn(name, "\n")] = 0;
        if (off == 0 && !strcmp(name, exe)) {
            base = start;
            break;
        }
    }
    fclose(f);
    if (!base)
        DIE("no mapping of %s in %s", exe, path);
    return base;
}

/* ---------------------------------------------------------------- events */

/* A thread reported PTRACE_EVENT_CLONE: register the new thread unless its initial stop came first.
 * Returns 1 if a stop of a new thread is now expected. */
static int on_clone(thr_t *parent)
{
    unsigned long nt = 0;
    E.st.clones++;
    if (ptrace(PTRACE_GETEVENTMSG, parent->tid, 0, &nt) == -1)
        return 0;
    if (find((pid_t)nt))
        return 0;
    thr_t *c = add((pid_t)nt, RUNNING);
    c->newborn = 1;
    c->intr = 1;
    return 1;
}

static void on_exit_status(pid_t r, thr_t *t)
{
    if (t)
        t->state = GONE;
    if (r == E.pid) {
        E.leader_gone = 1;
        E.launched = 0; /* reaped: nothing left to kill */
    }
}

/* A wait status while the world is running.  Returns 1 when a thread hit the breakpoint: it is left STOPPED
 * with its PC rewound and a pending hit; every other event is handled and the thread resumed. */
static int handle_running(pid_t r, int st)
{
    thr_t *t = find(r);
    if (WIFEXITED(st) || WIFSIGNALED(st)) {
        on_exit_status(r, t);
        return 0;
    }
    if (!WIFSTOPPED(st))
        return 0;
    int ev = (unsigned)st >> 16, sig = WSTOPSIG(st);
    if (!t) { /* a new thread's initial stop arrived before its creator's PTRACE_EVENT_CLONE */
        resume(add(r, RUNNING), 0);
        return 0;
    }
    t->state = STOPPED;
    switch (ev) {
    case PTRACE_EVENT_CLONE:
        on_clone(t);
        resume(t, 0);
        return 0;
    case PTRACE_EVENT_STOP:
        /* a new thread's initial stop, or the extra stop of an interrupt that stayed armed
         * (docs/kernel-facts.md §2.2) */
        if (t->newborn)
            t->newborn = t->intr = 0;
        else
            E.st.late_stops++;
        resume(t, 0);
        return 0;
    case 0:
        if (sig == SIGTRAP && E.bp) {
            uint64_t pc = get_pc(r);
            if (pc == E.bp + 1) {
                set_pc(r, E.bp);
                t->pending = 1;
                return 1;
            }
            if (t->stale_trap && pc == E.bp) {
                t->stale_trap = 0;
                E.st.stale_traps++;
                resume(t, 0);
                return 0;
            }
        }
        resume(t, sig);
        return 0;
    default: /* PTRACE_EVENT_EXIT, EXEC: nothing to do in these benchmarks */
        resume(t, 0);
        return 0;
    }
}

/* Wait until every thread with `intr` set has stopped.  `waiting` is how many such threads there are.  Every
 * other event met on the way is kept: breakpoint hits become pending hits, signals are kept for delivery,
 * threads born meanwhile are waited for too (they stay stopped). */
static void collect_stops(int waiting)
{
    while (waiting > 0) {
        int st;
        pid_t r = xwait(-1, &st, 0);
        if (r == -1) {
            if (errno == ECHILD)
                return;
            DIE("waitpid");
        }
        thr_t *t = find(r);
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (t && t->intr) {
                t->intr = 0;
                waiting--;
            }
            on_exit_status(r, t);
            continue;
        }
        if (!t) { /* initial stop of a thread whose creator's clone event is still to come */
            add(r, STOPPED);
            continue;
        }
        if (t->state != RUNNING) {
            fprintf(stderr, "ref_tracer: BUG: stopped thread %d reported status %#x\n", r, st);
            continue;
        }
        if (t->intr) {
            t->intr = 0;
            waiting--;
        }
        t->state = STOPPED;
        int ev = (unsigned)st >> 16, sig = WSTOPSIG(st);
        if (ev == PTRACE_EVENT_STOP) {
            t->newborn = 0;
            if (E.bp && sig == SIGTRAP && get_pc(r) == E.bp + 1 && sigtrap_queued(r)) {
                set_pc(r, E.bp); /* an int3 hidden behind the interrupt stop */
                t->pending = 1;
                t->stale_trap = 1;
                E.st.hidden_hits++;
            }
        } else if (ev == PTRACE_EVENT_CLONE) {
            waiting += on_clone(t);
        } else if (ev == 0) {
            uint64_t pc = (sig == SIGTRAP && E.bp) ? get_pc(r) : 0;
            if (pc && pc == E.bp + 1) {
                set_pc(r, E.bp);
                t->pending = 1;
                E.st.hits_while_stopping++;
            } else if (pc && pc == E.bp && t->stale_trap) {
                t->stale_trap = 0;
                E.st.stale_traps++;
            } else
                t->sig = sig;
        }
        /* PTRACE_EVENT_EXIT and others: held stopped, resumed later */
    }
}

/* PTRACE_INTERRUPT every running thread and wait until all are stopped. */
static void stop_all(void)
{
    int waiting = 0;
    for (int i = 0; i < E.n; i++) {
        thr_t *t = &E.t[i];
        if (t->state != RUNNING)
            continue;
        if (!t->newborn) { /* a newborn's initial stop is on its way anyway */
            E.st.interrupts++;
            if (ptrace(PTRACE_INTERRUPT, t->tid, 0, 0) == -1 && errno != ESRCH)
                DIE("PTRACE_INTERRUPT %d", t->tid);
            /* ESRCH: the thread is exiting; its exit status will arrive and count as its stop */
        }
        t->intr = 1;
        waiting++;
    }
    collect_stops(waiting);
}

/* Step every reported thread over the breakpoint while all the others stay stopped: lift the int3 once, single-
 * step each (an armed interrupt or a stale SIGTRAP may arrive instead of the step trap: step again), put it back. */
static void step_over_reported(void)
{
    pid_t via = 0;
    for (int i = 0; i < E.n && !via; i++)
        if (E.t[i].state == STOPPED && E.t[i].needs_step)
            via = E.t[i].tid;
    if (!via)
        return;
    poke_bp(via, 0);
    for (int i = 0; i < E.n; i++) {
        thr_t *t = &E.t[i];
        if (t->state != STOPPED || !t->needs_step)
            continue;
        t->needs_step = 0;
        for (int tries = 0;; tries++) {
            if (tries)
                E.st.step_retries++;
            if (ptrace(PTRACE_SINGLESTEP, t->tid, 0, 0) == -1) {
                if (errno == ESRCH)
                    break;
                DIE("PTRACE_SINGLESTEP %d", t->tid);
            }
            int st;
            if (xwait(t->tid, &st, 0) == -1)
                DIE("waitpid %d", t->tid);
            if (WIFEXITED(st) || WIFSIGNALED(st)) {
                on_exit_status(t->tid, t);
                break;
            }
            int ev = (unsigned)st >> 16, sig = WSTOPSIG(st);
            if (ev == 0 && sig == SIGTRAP) {
                uint64_t pc = get_pc(t->tid);
                if (pc != E.bp)
                    break; /* stepped */
                if (t->stale_trap) {
                    t->stale_trap = 0;
                    E.st.stale_traps++;
                }
            } else if (ev == 0)
                t->sig = sig;
            /* PTRACE_EVENT_STOP of an armed interrupt: the instruction has not run yet, step again */
        }
    }
    for (int i = 0; i < E.n; i++)
        if (E.t[i].state == STOPPED) {
            via = E.t[i].tid;
            break;
        }
    poke_bp(via, 1);
}

/* Drop the threads that are gone from the table (keeping the others' order), so that a program that creates
 * and joins threads all the time (`stress --churn`) costs each stop its live threads only, as it does ptstub's
 * engine, and never fills the table. */
static void forget_gone(void)
{
    int kept = 0;
    for (int i = 0; i < E.n; i++) {
        thr_t *t = &E.t[i];
        if (t->state == GONE) {
            if (E.idx[t->tid] == i + 1)
                E.idx[t->tid] = 0;
            continue;
        }
        if (kept != i) {
            E.t[kept] = *t;
            E.idx[t->tid] = kept + 1;
        }
        kept++;
    }
    E.n = kept;
}

static void resume_all(void)
{
    step_over_reported();
    forget_gone();
    for (int i = 0; i < E.n; i++)
        if (E.t[i].state == STOPPED)
            resume(&E.t[i], E.t[i].sig);
}

/* A pending hit, chosen at random among all pending ones so that no thread starves (like gdbserver). */
static thr_t *pick_pending(void)
{
    int n = 0;
    for (int i = 0; i < E.n; i++)
        n += E.t[i].pending && E.t[i].state == STOPPED;
    if (!n)
        return NULL;
    E.rng ^= E.rng << 13;
    E.rng ^= E.rng >> 17;
    E.rng ^= E.rng << 5;
    int k = (int)(E.rng % (uint32_t)n);
    for (int i = 0; i < E.n; i++)
        if (E.t[i].pending && E.t[i].state == STOPPED && k-- == 0)
            return &E.t[i];
    return NULL;
}

/* ---------------------------------------------------------------- statistics */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_samples(const char *name, uint64_t *v, int n)
{
    printf("%s_us=", name);
    for (int i = 0; i < n; i++)
        printf("%s%.1f", i ? "," : "", v[i] / 1e3);
    printf("\n");
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    double med = n % 2 ? v[n / 2] / 1e3 : (v[n / 2 - 1] + v[n / 2]) / 2e3;
    printf("%s min_us=%.1f median_us=%.1f max_us=%.1f\n", name, v[0] / 1e3, med, v[n - 1] / 1e3);
}

/* ---------------------------------------------------------------- modes */

static void usage(void)
{
    fprintf(stderr,
            "usage: ref_tracer hits [--threads N] (--bp-offset HEX|--bp-addr HEX) [--seconds S|--count H]\n"
            "                       [--no-stop-all] [--expect E] [--] PROG [ARGS...]\n"
            "       ref_tracer stopall [--threads N] [--busy K] [--rounds R] [--gap-us G] [--fifo] [--] PROG [ARGS...]\n"
            "       ref_tracer attach --pid P\n");
    exit(2);
}

static int mode_hits(int argc, char **argv)
{
    double seconds = 0;
    long count = 0, expect = -1, threads = 0;
    uint64_t bp_off = 0, bp_abs = 0;
    int have_bp = 0, stop_all_on = 1, i;
    for (i = 0; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--expect") && i + 1 < argc)
            expect = atol(argv[++i]);
        else if (!strcmp(argv[i], "--bp-offset") && i + 1 < argc)
            bp_off = strtoull(argv[++i], NULL, 16), have_bp = 1;
        else if (!strcmp(argv[i], "--bp-addr") && i + 1 < argc)
            bp_abs = strtoull(argv[++i], NULL, 16), have_bp = 1;
        else if (!strcmp(argv[i], "--no-stop-all"))
            stop_all_on = 0;
        else
            usage();
    }
    i += i < argc && !strcmp(argv[i], "--"); /* "--" before PROG is optional */
    if (i >= argc || !have_bp)
        usage();
    char **prog = argv + i;
    int devnull = open("/dev/null", O_WRONLY);
    pid_t pid = launch(prog, -1, devnull);
    close(devnull);
    insert_breakpoint(pid, bp_abs ? bp_abs : exe_load_base(pid) + bp_off);

    long hits = 0;
    uint64_t t_first = 0, t_last = 0, limit_ns = (uint64_t)(seconds * 1e9);
    for (;;) {
        thr_t *hit = pick_pending();
        if (!hit) {
            resume_all();
            pid_t r = 0;
            for (;;) {
                int st;
                r = xwait(-1, &st, 0);
                if (r == -1) {
                    if (errno == ECHILD)
                        break;
                    DIE("waitpid");
                }
                if (handle_running(r, st))
                    break;
                if (E.leader_gone)
                    break;
            }
            if (E.leader_gone || r == -1)
                break;
            if (stop_all_on)
                stop_all();
            hit = pick_pending();
        }
        /* "report" the hit */
        hit->pending = 0;
        hit->needs_step = 1;
        hits++;
        t_last = now_ns();
        if (!t_first)
            t_first = t_last;
        if ((count && hits >= count) || (limit_ns && t_last - t_first >= limit_ns))
            break;
    }
    kill_and_reap();
    double secs = (t_last - t_first) / 1e9;
    printf("stats interrupts=%ld hits_while_stopping=%ld hidden_hits=%ld late_stops=%ld stale_traps=%ld "
           "step_retries=%ld clones=%ld\n",
           E.st.interrupts, E.st.hits_while_stopping, E.st.hidden_hits, E.st.late_stops, E.st.stale_traps,
           E.st.step_retries, E.st.clones);
    printf("threads=%ld stop_all=%d\n", threads, stop_all_on);
    printf("hits=%ld seconds=%.6f hits_per_s=%.1f\n", hits, secs, secs > 0 ? (hits - 1) / secs : 0.0);
    if (expect >= 0 && hits != expect) {
        fprintf(stderr, "ref_tracer: expected %ld hits, counted %ld\n", expect, hits);
        return 1;
    }
    return 0;
}

/* Handle events while the program runs, until `fd` has a line that starts with "ready". */
static void run_until_ready(int fd)
{
    char buf[4096];
    size_t have = 0;
    uint64_t deadline = now_ns() + 60ull * 1000000000ull;
    for (;;) {
        int st;
        pid_t r;
        while ((r = xwait(-1, &st, WNOHANG)) > 0)
            handle_running(r, st);
        if (E.leader_gone) {
            fprintf(stderr, "ref_tracer: program ended before printing ready\n");
            cleanup_and_exit(2);
        }
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 1) > 0) {
            ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
            if (n <= 0) {
                fprintf(stderr, "ref_tracer: program closed stdout before printing ready\n");
                cleanup_and_exit(2);
            }
            have += (size_t)n;
            buf[have] = 0;
            if (strstr(buf, "ready"))
                return;
            if (have > sizeof buf / 2)
                have = 0;
        }
        if (now_ns() > deadline) {
            fprintf(stderr, "ref_tracer: no ready line within 60 s\n");
            cleanup_and_exit(2);
        }
    }
}

static void run_for(uint64_t ns)
{
    uint64_t end = now_ns() + ns;
    do {
        int st;
        pid_t r;
        while ((r = xwait(-1, &st, WNOHANG)) > 0)
            handle_running(r, st);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    } while (now_ns() < end);
}

static int mode_stopall(int argc, char **argv)
{
    int rounds = 100, fifo = 0, i;
    long gap_us = 2000, threads = 0, busy = 0;
    for (i = 0; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atol(argv[++i]);
        else if (!strcmp(argv[i], "--busy") && i + 1 < argc)
            busy = atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gap-us") && i + 1 < argc)
            gap_us = atol(argv[++i]);
        else if (!strcmp(argv[i], "--fifo"))
            fifo = 1;
        else
            usage();
    }
    i += i < argc && !strcmp(argv[i], "--");
    if (i >= argc || rounds < 1)
        usage();
    int in[2], out[2];
    if (pipe(in) == -1 || pipe(out) == -1)
        DIE("pipe");
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    uint64_t t_setup = now_ns();
    launch(argv + i, in[0], out[1]);
    close(in[0]);
    close(out[1]);
    resume_all();
    run_until_ready(out[0]);
    run_for(20ull * 1000000ull); /* let the busy threads get going */
    if (fifo) {
        struct sched_param sp = {.sched_priority = 1};
        if (sched_setscheduler(0, SCHED_FIFO, &sp) == -1)
            DIE("sched_setscheduler(SCHED_FIFO)");
    }
    int nthreads = count_state(RUNNING);
    uint64_t t_rounds = now_ns();
    uint64_t *stop = calloc((size_t)rounds, sizeof *stop), *both = calloc((size_t)rounds, sizeof *both);
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = now_ns();
        stop_all();
        uint64_t t1 = now_ns();
        resume_all();
        uint64_t t2 = now_ns();
        stop[r] = t1 - t0;
        both[r] = t2 - t0;
        run_for((uint64_t)gap_us * 1000ull);
    }
    if (fifo) {
        struct sched_param sp = {.sched_priority = 0};
        sched_setscheduler(0, SCHED_OTHER, &sp);
    }
    /* stdin EOF ends the program; that is much quicker than SIGKILL, which leaves every thread to be continued
     * out of PTRACE_EVENT_EXIT while busy threads still compete for the CPUs */
    uint64_t t_teardown = now_ns();
    close(in[1]);
    uint64_t end = now_ns() + 5000000000ull;
    while (!E.leader_gone && now_ns() < end)
        run_for(1000000ull);
    kill_and_reap();
    uint64_t t_end = now_ns();
    printf("threads=%d (requested %ld, busy %ld) rounds=%d fifo=%d interrupts=%ld late_stops=%ld\n", nthreads,
           threads, busy, rounds, fifo, E.st.interrupts, E.st.late_stops);
    printf("phases setup_ms=%.1f rounds_ms=%.1f teardown_ms=%.1f\n", (t_rounds - t_setup) / 1e6,
           (t_teardown - t_rounds) / 1e6, (t_end - t_teardown) / 1e6);
    print_samples("stop", stop, rounds);
    print_samples("stop_resume", both, rounds);
    return 0;
}

static int mode_attach(int argc, char **argv)
{
    pid_t pid = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--pid") && i + 1 < argc)
            pid = atoi(argv[++i]);
        else
            usage();
    }
    if (pid <= 0)
        usage();
    E.pid = pid;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    uint64_t t0 = now_ns();
    int quiet = 0, passes = 0, waiting = 0;
    while (quiet < 2) {
        DIR *d = opendir(path);
        if (!d)
            DIE("opendir %s", path);
        int fresh = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] < '0' || de->d_name[0] > '9')
                continue;
            pid_t tid = atoi(de->d_name);
            if (find(tid))
                continue;
            if (ptrace(PTRACE_SEIZE, tid, 0, (void *)(long)ATTACH_OPTS) == -1) {
                if (errno == ESRCH)
                    continue; /* exited between readdir and seize */
                if (errno == EPERM && passes == 0 && tid == pid)
                    DIE("PTRACE_SEIZE %d (already traced? ptrace_scope? CAP_SYS_PTRACE?)", tid);
                continue; /* EPERM later: auto-attached by TRACECLONE before we got to it */
            }
            thr_t *t = add(tid, RUNNING);
            if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) == -1 && errno != ESRCH)
                DIE("PTRACE_INTERRUPT %d", tid);
            t->intr = 1;
            waiting++;
            fresh++;
        }
        closedir(d);
        passes++;
        quiet = fresh ? 0 : quiet + 1;
    }
    collect_stops(waiting);
    uint64_t t1 = now_ns();
    int n = count_state(STOPPED);
    /* detach: non-leader threads first, the leader last (docs/kernel-facts.md §2.8) */
    for (int i = 0; i < E.n; i++)
        if (E.t[i].state == STOPPED && E.t[i].tid != pid)
            ptrace(PTRACE_DETACH, E.t[i].tid, 0, (void *)(long)E.t[i].sig);
    thr_t *lead = find(pid);
    if (lead && lead->state == STOPPED)
        ptrace(PTRACE_DETACH, pid, 0, (void *)(long)lead->sig);
    printf("threads=%d passes=%d attach_us=%.1f\n", n, passes, (t1 - t0) / 1e3);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    table_init();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(argv[1], "hits"))
        return mode_hits(argc - 2, argv + 2);
    if (!strcmp(argv[1], "stopall"))
        return mode_stopall(argc - 2, argv + 2);
    if (!strcmp(argv[1], "attach"))
        return mode_attach(argc - 2, argv + 2);
    usage();
    return 2;
}
