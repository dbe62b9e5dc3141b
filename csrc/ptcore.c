/* ptcore.c - ptstub's all-stop engine core: waitpid, stop-all, breakpoint step-over, memory, registers.
 *
 * Follows ptrace(2) (PTRACE_SEIZE / PTRACE_INTERRUPT semantics), signal(7) (syscall restart) and the
 * facts in docs/kernel-facts.md §2-§3.  Invariants:
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
#include <sched.h>
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

/* The wake signal of blocking waits (0: not usable, every wait sleeps in ppoll).  Process-wide for
 * the same reason: it is a signal disposition. */
static int wake_sig;

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

/* Sleeping in waitpid.  A tracer asleep in waitpid() is woken by the stopping thread itself with a
 * *synchronous* wake-up (__wake_up_parent), so the scheduler runs it at once on the CPU that thread
 * is leaving.  Asleep in ppoll() it is woken by SIGCHLD, an ordinary wake-up that may queue it
 * behind a busy thread on the other CPU for a whole time slice (1.5-3.5 ms stalls, measured: the
 * tail that held one-thread hits/s at half the C reference).  So the waits that watch no file
 * descriptor sleep in waitpid() with SIGCHLD blocked, and a per-engine POSIX timer sends `wake_sig`
 * to the tracer thread every 100 ms (and at the caller's deadline) so that waitpid returns EINTR
 * for timeouts and retries; pt_request_stop() sends it too.  A wake that lands between the last
 * look at stop_flag and the waitpid call is caught by the next timer tick, 100 ms later at most.
 * The signal is a real-time one whose disposition was the default; if the program using ptstub
 * took it, waits sleep in ppoll as before.  PTSTUB_NO_BLOCKING_WAIT=1 turns this off. */
/* Sleep in waitpid only while few threads run: with many, a prompt wake-up per stop costs more than
 * it saves, and the coalesced SIGCHLD of ppoll lets one wake-up collect a batch (stops to collect,
 * or hits of several threads reported one by one without resuming in between).  Measured, 8
 * workers: 12k hits/s with ppoll, 7k sleeping in waitpid; 1 worker: the reverse. */
#define FEW_RUNNING 3

static void on_wake(int sig)
{
    (void)sig; /* its only job is to make the interrupted waitpid() return EINTR */
}

static void install_wake_signal(void)
{
    static int tried;
    if (tried)
        return;
    tried = 1;
    const char *no = getenv("PTSTUB_NO_BLOCKING_WAIT");
    if (no && *no && *no != '0')
        return;
    int sig = SIGRTMAX - 2;
    struct sigaction old, sa;
    if (sigaction(sig, NULL, &old) < 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_wake; /* no SA_RESTART: the point is the EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) == 0)
        wake_sig = sig;
}

static pid_t self_tid(void)
{
    static __thread pid_t tid;
    if (!tid)
        tid = (pid_t)syscall(SYS_gettid);
    return tid;
}

/* Arm the engine's timer for this call: first tick after first_ms, then every 100 ms. */
static int arm_wake_timer(pt_engine *e, int first_ms)
{
    if (e->timer_state && e->tracer_tid != self_tid()) { /* another thread drives the engine now */
        timer_delete((timer_t)e->wake_timer);
        e->timer_state = 0;
    }
    if (!e->timer_state) {
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = wake_sig;
        sev._sigev_un._tid = self_tid();
        timer_t id;
        if (timer_create(CLOCK_MONOTONIC, &sev, &id) < 0)
            return -errno;
        e->wake_timer = (void *)id;
        e->tracer_tid = self_tid();
        e->timer_state = 1;
    }
    struct itimerspec its = {{0, 100000000L}, {first_ms / 1000, (long)(first_ms % 1000) * 1000000L}};
    if (timer_settime((timer_t)e->wake_timer, 0, &its, NULL) < 0)
        return -errno;
    e->timer_state = 2;
    return 0;
}

static void disarm_wake_timer(pt_engine *e)
{
    if (e->timer_state != 2)
        return;
    struct itimerspec off;
    memset(&off, 0, sizeof off);
    timer_settime((timer_t)e->wake_timer, 0, &off, NULL);
    e->timer_state = 1;
}

/* Take a stop request made by pt_request_stop (and reset its eventfd, which ppoll watches). */
static int take_stop_request(pt_engine *e)
{
    if (!__atomic_exchange_n(&e->stop_flag, 0, __ATOMIC_SEQ_CST))
        return 0;
    drain_fd(e->wakefd);
    return 1;
}

/* Sleep in waitpid() until a status comes (handled here; *found gets its result) or the wake
 * signal (a tick, a deadline, a stop request).  Returns 1 after a status, 0 after a wake, or
 * -ENOSYS when blocking waits are not available (the caller sleeps in ppoll instead). */
static int drain_from(pt_engine *e, int hold, int tid, int status);
static int sleep_in_waitpid(pt_engine *e, uint64_t deadline_ns, int *found)
{
    if (!wake_sig)
        return -ENOSYS;
    if (e->timer_state != 2 || e->tracer_tid != self_tid()) {
        int first_ms = 100;
        if (deadline_ns) {
            uint64_t now = pt_now_ns();
            if (now >= deadline_ns)
                return 0;
            uint64_t left = (deadline_ns - now + 999999) / 1000000;
            if (left < 100)
                first_ms = (int)left;
        }
        if (arm_wake_timer(e, first_ms) < 0)
            return -ENOSYS;
    }
    __atomic_store_n(&e->blocking, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&e->stop_flag, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&e->blocking, 0, __ATOMIC_SEQ_CST);
        return 0;
    }
    int st;
    pid_t r = waitpid(-1, &st, __WALL);
    __atomic_store_n(&e->blocking, 0, __ATOMIC_SEQ_CST);
    if (r > 0) {
        *found |= drain_from(e, 1, r, st); /* that status and whatever else is ready, as one batch */
        return 1;
    }
    return 0; /* EINTR, or ECHILD (the caller's drain() sees that the process is gone) */
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
    if (wake_sig)
        sigdelset(&during, wake_sig);
    memcpy(e->sleep_mask, &during, sizeof during);
}

static void block_sigchld(sigset_t *old)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &chld, old);
    if (wake_sig && sigismember(old, wake_sig)) { /* the caller blocks it: let it through meanwhile */
        sigset_t wake;
        sigemptyset(&wake);
        sigaddset(&wake, wake_sig);
        pthread_sigmask(SIG_UNBLOCK, &wake, NULL);
    }
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
        disarm_wake_timer(e);                                                                          \
        restore_mask(&old_mask_);                                                                      \
        return rc_;                                                                                    \
    } while (0)

/* Read a small /proc file into buf (NUL-terminated); returns 0 or -errno. */
static int read_proc_file(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, size - 1);
    close(fd);
    if (n <= 0)
        return -EIO;
    buf[n] = 0;
    return 0;
}

static int tgid_of(int tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int rc = read_proc_file(path, buf, sizeof buf);
    if (rc < 0)
        return rc;
    char *p = strstr(buf, "\nTgid:");
    return p ? atoi(p + 6) : -ENOENT;
}

/* The state letter of a stat file ('R', 'S', 'T', 't', 'Z', 'X'...), 0 if gone. */
static char state_letter(const char *stat_path)
{
    char buf[512];
    if (read_proc_file(stat_path, buf, sizeof buf) < 0)
        return 0;
    char *p = strrchr(buf, ')');
    return (p && p[1] && p[2]) ? p[2] : 0;
}

/* ... of /proc/PID/task/TID/stat. */
static char task_state(int pid, int tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
    return state_letter(path);
}

static uint64_t hexmask(const char *s)
{
    return strtoull(s, NULL, 16);
}

/* The value of a "Field:\t<hex>" line of a /proc status text, 0 when absent. */
static uint64_t status_mask(const char *status, const char *field)
{
    const char *p = strstr(status, field);
    return p ? hexmask(p + strlen(field)) : 0;
}

/* /proc/PID/task/TID/status into buf (4096 bytes); 0 or -errno. */
static int read_task_status(int pid, int tid, char *buf)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/status", pid, tid);
    return read_proc_file(path, buf, 4096);
}

/* True when the thread has a signal pending that it does not block (signal(7)): then an -EINTR
 * return is what a run without the debugger would see too, so we must not hide it.  One read of
 * /proc/PID/task/TID/status gives all three masks, both pending sets included even for a signal the
 * kernel queued without its siginfo (which PTRACE_PEEKSIGINFO cannot see).  Read only at an
 * interrupt stop that pulled a thread out of a call returning -EINTR, never per clone, exit or stop. */
static int has_deliverable_signal(int pid, int tid)
{
    char buf[4096];
    if (read_task_status(pid, tid, buf) < 0)
        return 1; /* cannot tell: be conservative, leave the EINTR alone */
    uint64_t pending = status_mask(buf, "\nSigPnd:") | status_mask(buf, "\nShdPnd:");
    return (pending & ~status_mask(buf, "\nSigBlk:")) != 0;
}

/* The si_code of the first SIGTRAP queued for the thread itself (an int3 or a hardware trap it hit,
 * not yet reported), 0 if none, -1 if one is pending with its code unknown.  PTRACE_PEEKSIGINFO reads
 * the thread's private queue without dequeuing, one system call instead of rendering
 * /proc/.../status (which cost a fifth of the tracer's time with 8 threads hitting). */
static int queued_trap(int pid, int tid)
{
    struct __ptrace_peeksiginfo_args args = {.off = 0, .flags = 0, .nr = 16};
    siginfo_t queue[16];
    long n = ptrace(PTRACE_PEEKSIGINFO, tid, &args, queue);
    if (n >= 0 && n < 16) {
        for (long i = 0; i < n; i++)
            if (queue[i].si_signo == SIGTRAP)
                return queue[i].si_code;
        return 0;
    }
    char buf[4096]; /* a longer queue, or no PEEKSIGINFO: the pending mask says it */
    if (read_task_status(pid, tid, buf) < 0)
        return 0;
    return (status_mask(buf, "\nSigPnd:") >> (SIGTRAP - 1)) & 1 ? -1 : 0;
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

/* The live record of tid.  A PT_GONE record is never returned: its thread's exit status was reaped,
 * and the kernel frees a tid only when the task is released, which for a traced thread is that very
 * reaping (wait_task_zombie() -> release_task()).  So any later status for the same tid belongs to a
 * new thread.  With pid_max at 32,768 (the default below 32 CPUs) thread churn wraps the tid space in
 * seconds; a new thread found under a dead one's record was left stopped at its first stop, unknown
 * to the table once the record was pruned (a hang: its joiner, then main, waited for ever).  The gone
 * record stays in the table (a pointer to it may be held) until pt_prune. */
static pt_thread *find(pt_engine *e, int32_t tid)
{
    if (!e->hashcap)
        return NULL;
    uint32_t h = ((uint32_t)tid * 2654435761u) & (uint32_t)(e->hashcap - 1);
    while (e->hash[h]) {
        pt_thread *t = e->threads[e->hash[h] - 1];
        if (t->tid == tid && t->state != PT_GONE)
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
    t->serial = ++e->n_records;
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

static int take_own_orphan(pt_engine *e, int tid, int *status);

/* Remove kept status i, keeping the others in order (the oldest first: remember_orphan relies on it). */
static void drop_orphan(pt_engine *e, int i)
{
    e->n_orphans--;
    memmove(e->orphan_tid + i, e->orphan_tid + i + 1, (size_t)(e->n_orphans - i) * sizeof(int32_t));
    memmove(e->orphan_status + i, e->orphan_status + i + 1, (size_t)(e->n_orphans - i) * sizeof(int32_t));
}

/* Keep a status for whichever engine claims its tid later: the first stop of a clone or fork child
 * that came before its parent's event (parked: the thread stays stopped until then), or an exit
 * status of a tid no engine knows.  Stops are all kept, since one dropped would leave its thread
 * stopped for ever; exit statuses at most PT_MAX_ORPHANS, the oldest going first.  An exit status
 * replaces a parked stop of the same tid: the thread died before anyone claimed it, and its tid may
 * be a new thread's next (see find()). */
static void remember_orphan(pt_engine *e, int tid, int status)
{
    int is_exit = WIFEXITED(status) || WIFSIGNALED(status), old;
    if (is_exit) {
        while (take_own_orphan(e, tid, &old))
            ;
        int exits = 0, oldest = -1;
        for (int i = 0; i < e->n_orphans; i++)
            if (WIFEXITED(e->orphan_status[i]) || WIFSIGNALED(e->orphan_status[i])) {
                exits++;
                oldest = oldest < 0 ? i : oldest;
            }
        if (exits >= PT_MAX_ORPHANS) /* taken out in order, so the first one is the oldest */
            drop_orphan(e, oldest);
    }
    if (e->n_orphans == e->orphan_cap) {
        int32_t ncap = e->orphan_cap ? 2 * e->orphan_cap : 64;
        int32_t *tids = realloc(e->orphan_tid, (size_t)ncap * sizeof *tids);
        if (tids)
            e->orphan_tid = tids;
        int32_t *sts = tids ? realloc(e->orphan_status, (size_t)ncap * sizeof *sts) : NULL;
        if (!sts)
            return; /* out of memory: nothing better to do */
        e->orphan_status = sts;
        e->orphan_cap = ncap;
    }
    e->orphan_tid[e->n_orphans] = tid;
    e->orphan_status[e->n_orphans] = status;
    e->n_orphans++;
}

/* A status one engine collected may be kept by another engine of the same session (its waitpid(-1)
 * came first): look in the whole ring of peers. */
static int take_orphan(pt_engine *e, int tid, int *status)
{
    if (take_own_orphan(e, tid, status))
        return 1;
    for (pt_engine *p = e->peer; p && p != e; p = p->peer)
        if (take_own_orphan(p, tid, status))
            return 1;
    return 0;
}

/* Take the oldest status kept for tid. */
static int take_own_orphan(pt_engine *e, int tid, int *status)
{
    for (int i = 0; i < e->n_orphans; i++) {
        if (e->orphan_tid[i] == tid) {
            *status = e->orphan_status[i];
            drop_orphan(e, i);
            return 1;
        }
    }
    return 0;
}

/* Several processes in one session (docs/design-notes.md, "Several processes"): a status of a thread
 * that belongs to a peer engine is handled by that engine, in that engine's state (its world running
 * or held).  When it gives the peer an event to report, every engine of the ring is flagged, so that
 * whichever one is waiting ends its wait (pt_wait returns 4).  Returns -1 when no peer owns tid. */
static int on_status(pt_engine *e, int tid, int status);
static int route_to_peer(pt_engine *e, int tid, int status)
{
    pt_engine *owner = NULL;
    for (pt_engine *p = e->peer; p && p != e && !owner; p = p->peer)
        if (tid == p->pid || find(p, tid))
            owner = p;
    if (!owner && (WIFEXITED(status) || WIFSIGNALED(status)))
        return -1; /* an exit status of a thread no engine knows: /proc has nothing to tell any more */
    /* Only with several processes (no peer, no loop): a peer's thread seen before the peer knew it.
     * Parking it would do too (the claimant looks in every engine's orphans), but the routing is kept
     * as it was measured with GDB's multi-process tests; one engine alone never reads /proc here. */
    for (pt_engine *p = e->peer; p && p != e && !owner; p = p->peer)
        if (tgid_of(tid) == p->pid)
            owner = p;
    if (!owner)
        return -1;
    int got = on_status(owner, tid, status);
    if (got) {
        owner->peer_event = 1;
        for (pt_engine *p = owner->peer; p && p != owner; p = p->peer)
            p->peer_event = 1;
    }
    return got;
}

static void route_or_remember(pt_engine *e, int tid, int status)
{
    if (route_to_peer(e, tid, status) < 0)
        remember_orphan(e, tid, status);
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
    if (len > 64) { /* process_vm_readv is fastest for large reads (docs/kernel-facts.md §7) */
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
    e->removed_bps[e->removed_next++ % 16] = addr;
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
    if (ptrace(PTRACE_SETREGS, tid, 0, (void *)buf216) < 0)
        return -errno;
    /* Moved off the int3 it reported: it has not executed what is at its new pc, so a breakpoint
     * there hits on resume (GDB's `jump` to a breakpoint stops at once, as with gdbserver, which
     * never steps over GDB's breakpoints itself). */
    if (t && t->on_breakpoint && t->bp_pc != r->rip)
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

/* A thread stopped by our PTRACE_INTERRUPT (the stop-all, an attach) has the siginfo of that event
 * stop, SIGTRAP with si_code PTRACE_EVENT_STOP << 8, which GDB would show as $_siginfo.  gdbserver
 * and GDB's native target stop a thread with a SIGSTOP, which the kernel dequeues after any signal
 * already pending: so a thread with a signal pending shows that signal (it is delivered when the
 * thread runs), any other the SIGSTOP (tgkill: SI_TKILL, our pid) (attach-into-signal.exp). */
int pt_get_siginfo(int32_t tid, uint8_t *buf128)
{
    if (ptrace(PTRACE_GETSIGINFO, tid, 0, buf128) < 0)
        return -errno;
    siginfo_t *si = (siginfo_t *)(void *)buf128;
    if (si->si_signo == SIGTRAP && si->si_code == ((PTRACE_EVENT_STOP << 8) | SIGTRAP)) {
        struct __ptrace_peeksiginfo_args args = {.off = 0, .flags = 0, .nr = 1};
        if (ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf128) == 1)
            return 0; /* the first signal queued for the thread itself */
        args.flags = PTRACE_PEEKSIGINFO_SHARED;
        if (ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf128) == 1)
            return 0; /* else one queued for the process */
        memset(buf128, 0, 128);
        si->si_signo = SIGSTOP;
        si->si_code = SI_TKILL;
        si->si_pid = getpid();
        si->si_uid = getuid();
    }
    return 0;
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

/* docs/kernel-facts.md §7: when busy threads outnumber CPUs, each PTRACE_CONT wakes a thread that can preempt
 * the tracer in the middle of resuming the rest.  For the length of a resume batch the tracer thread
 * gets a higher weight (nice -15, this thread only, when permitted), then its own back; holding it
 * longer measured worse (the tracer then preempts threads on their way to a stop).  Only with more
 * than two threads per CPU: with few, the heavier tracer makes the scheduler queue the woken threads
 * on the other CPU, behind a busy one (1-thread hits/s fell by a fifth).
 * PTSTUB_NO_RENICE=1 turns this off.  Returns the nice value to restore, or INT_MIN. */
#define NOT_BOOSTED (-2147483647 - 1)
static int online_cpus(void)
{
    static int n;
    if (!n)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

static int boost_begin(void)
{
    const char *no = getenv("PTSTUB_NO_RENICE");
    if (no && *no && *no != '0')
        return NOT_BOOSTED;
    id_t self = (id_t)self_tid();
    errno = 0;
    int current = getpriority(PRIO_PROCESS, self);
    if (errno != 0 || current <= -15 || setpriority(PRIO_PROCESS, self, -15) != 0)
        return NOT_BOOSTED;
    return current;
}

static void boost_end(int previous)
{
    if (previous != NOT_BOOSTED)
        (void)setpriority(PRIO_PROCESS, (id_t)self_tid(), previous);
}

/* A stop whose PTRACE_CONT can deliver a signal: neither a PTRACE_EVENT stop nor a syscall stop. */
static int is_signal_delivery_stop(int event, int sig)
{
    return event == 0 && sig != (SIGTRAP | 0x80);
}

/* Queue a signal GDB gave a thread where no signal-delivery-stop can take it; on_signal passes it
 * through when it arrives. */
static void queue_signal(pt_engine *e, pt_thread *t, int sig)
{
    if (sig > 0 && sig <= 64 && syscall(SYS_tgkill, e->pid, t->tid, sig) == 0)
        t->inject_mask |= 1ull << (sig - 1);
}

/* The signal to resume a thread with: one collected while stopping (deliver_sig) or GDB's
 * (action_sig); when both are due, GDB's goes in through queue_signal. */
static int take_resume_signal(pt_engine *e, pt_thread *t)
{
    int sig = t->deliver_sig, extra = t->action_sig;
    t->deliver_sig = 0;
    t->action_sig = 0;
    if (!sig)
        return extra;
    if (extra && extra != sig)
        queue_signal(e, t, extra);
    return sig;
}

/* Nothing is resumed after all (a pending event is reported first): GDB's signals stay due, as
 * gdbserver keeps them (enqueue_pending_signal), for the resume that does run the thread. */
static void keep_action_signals(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++)
        if (e->threads[i]->action_sig)
            e->threads[i]->deliver_sig = take_resume_signal(e, e->threads[i]);
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
    else if (sig && !t->at_signal_stop) {
        /* At an interrupt or event stop the kernel ignores the signal of PTRACE_CONT (ptrace(2),
         * "the data argument is ignored"): queue it instead. */
        queue_signal(e, t, sig);
        sig = 0;
    }
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
    t->at_signal_stop = 0;
    if (req == PTRACE_SINGLESTEP)
        t->step_unfinished = 1;
    set_state(e, t, t->exiting ? PT_EXITING : PT_RUNNING);
    return 0;
}

static int record(pt_thread *t, int kind, int sig, uint64_t pc, uint64_t data);

/* Note a thread to resume when the drain under way ends; 0 when it must be resumed now (no memory). */
static int defer_resume(pt_engine *e, pt_thread *t)
{
    if (t->resume_due)
        return 1;
    if (e->ndue == e->duecap) {
        int32_t ncap = e->duecap ? 2 * e->duecap : 64;
        pt_thread **n = realloc(e->due, (size_t)ncap * sizeof *n);
        if (!n)
            return 0;
        e->due = n;
        e->duecap = ncap;
    }
    e->due[e->ndue++] = t;
    t->resume_due = 1;
    return 1;
}

/* End of a drain: run the threads whose resume was deferred, or with `hold` (an event was found and
 * the world is about to be stopped) leave them stopped: pt_resume runs them with everyone else. */
static void settle_deferred(pt_engine *e, int hold)
{
    for (int32_t i = 0; i < e->ndue; i++) {
        pt_thread *t = e->due[i];
        t->resume_due = 0;
        if (hold || t->state != PT_STOPPED || t->ev_kind != PT_EV_NONE)
            continue; /* held, killed meanwhile (its exit status came), or it has an event after all */
        int sig = t->deliver_sig;
        t->deliver_sig = 0;
        resume_thread(e, t, sig);
    }
    e->ndue = 0;
}

/* Resume a thread after a stop that is not reported, unless the world is stopping or stopped. */
static int keep_or_resume(pt_engine *e, pt_thread *t)
{
    if (e->stopping || e->world_stopped)
        return 0;
    if (t->want_stop && t->interrupt_pending && !t->exiting) {
        /* Non-stop: this stop (a clone event, a passed signal...) took our PTRACE_INTERRUPT with it:
         * any ptrace-stop clears the pending STOP trap (kernel ptrace_stop()), so no
         * PTRACE_EVENT_STOP follows if the interrupt came first.  This is the stop GDB asked for; if
         * the interrupt came after it, its PTRACE_EVENT_STOP follows the next resume as an echo. */
        t->interrupt_pending = 0;
        t->want_stop = 0;
        struct user_regs_struct r;
        uint64_t pc = ptrace(PTRACE_GETREGS, t->tid, 0, &r) == 0 ? r.rip : 0;
        return record(t, PT_EV_INTERRUPT, 0, pc, 0);
    }
    if (e->collecting && defer_resume(e, t))
        return 0; /* resumed at the end of the drain (see drain()) */
    int sig = t->deliver_sig;
    t->deliver_sig = 0;
    resume_thread(e, t, sig);
    return 0;
}

static int record(pt_thread *t, int kind, int sig, uint64_t pc, uint64_t data)
{
    t->want_stop = 0; /* non-stop: any reported stop answers a stop request */
    t->ev_kind = kind;
    t->ev_sig = sig;
    t->ev_pc = pc;
    t->ev_data = data;
    return 1;
}

/* ------------------------------------------------------------------------------------------------ */
/* transparent restart (docs/kernel-facts.md §3)                                                     */

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

/* Timed waits whose timeout is a relative timespec in program memory (rt_sigtimedwait: rdx;
 * epoll_pwait2, semtimedop: r10; io_getevents: r8).  ptstub does not rewrite the program's own timespec (it may be const, and the program may
 * reuse it); it writes the time left into a scratch timespec 512 bytes below the stack pointer,
 * past the red zone (nothing else uses that memory while the thread sits in a system call, and
 * the call copies it in as soon as it restarts), and points the argument register at it.  "The
 * same call" is recognised by the pc and the register holding that scratch address. */
static unsigned long long *timespec_arg(long nr, struct user_regs_struct *r)
{
    if (nr == SYS_rt_sigtimedwait)
        return &r->rdx;
    if (nr == SYS_semtimedop)
        return &r->r10;
    if (nr == SYS_io_getevents)
        return &r->r8;
#ifdef SYS_epoll_pwait2
    if (nr == SYS_epoll_pwait2)
        return &r->r10;
#endif
    return NULL;
}

static void shorten_timespec_wait(pt_engine *e, pt_thread *t, struct user_regs_struct *r,
                                  unsigned long long *arg)
{
    uint64_t now = pt_now_ns();
    uint64_t scratch = (r->rsp - 512) & ~15ull;
    if (*arg == 0) { /* no timeout: waits forever, nothing to shorten */
        t->restart_pc = 0;
        return;
    }
    if (t->restart_pc != r->rip || (uint64_t)t->restart_written != *arg) { /* first stop of this call */
        struct timespec ts;
        if (pt_read_memory(e, *arg, (uint8_t *)&ts, sizeof ts) != sizeof ts || ts.tv_sec < 0 ||
            ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L || ts.tv_sec > 100000000L) {
            t->restart_pc = 0;
            return;
        }
        t->restart_deadline_ns = now + (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    }
    uint64_t left = t->restart_deadline_ns > now ? t->restart_deadline_ns - now : 0;
    struct timespec out = {(time_t)(left / 1000000000ull), (long)(left % 1000000000ull)};
    if (pt_write_memory(e, scratch, (const uint8_t *)&out, sizeof out) != sizeof out) {
        t->restart_pc = 0; /* no room below the stack: restart with the program's own timeout */
        return;
    }
    t->restart_pc = r->rip;
    t->restart_written = (int64_t)scratch;
    *arg = scratch;
}

/* The kernel restarts nanosleep/poll/select with the time left (restart_block); epoll_wait keeps
 * its timeout in milliseconds in r10, and a restart through -ERESTARTNOHAND passes the same r10
 * again, so each stop would start the full timeout anew.  We keep the call's deadline on the
 * wall clock from its first stop and rewrite r10 with the time left, rounded up to the millisecond,
 * as the kernel does for the calls it restarts itself.  The deadline is taken at the first stop,
 * as if the call had just begun, so a wait can end late by the time it had already waited then,
 * never early.
 *
 * "The same call" is recognised by the pc and by r10 still holding the value we wrote; the first
 * write adds 1 ms (erring late), so a new call from the same place, passing its own timeout again,
 * is not mistaken for ours.  Timespec timeouts: shorten_timespec_wait.  Socket timeouts
 * (SO_RCVTIMEO) live in the kernel and restart in full. */
static void shorten_timed_wait(pt_engine *e, pt_thread *t, struct user_regs_struct *r)
{
    long nr = (long)r->orig_rax;
    unsigned long long *arg = timespec_arg(nr, r);
    if (arg) {
        shorten_timespec_wait(e, t, r, arg);
        return;
    }
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
        /* No longer in a restarted timed wait, unless stopped on its way back in: our restart still
         * pending (rax -ERESTARTNOHAND, an interrupt that came first) or pc rewound onto the syscall
         * instruction.  Forgetting the deadline there made the next stop start it anew, a whole
         * timeout from then: a 1 s epoll_wait took 1.5 s at 4,000 stops/s. */
        int on_way_back = r->rip + 2 == t->restart_pc ||
                          (r->rip == t->restart_pc && (long)r->rax == -ERESTARTNOHAND);
        if (!t->restart_pc || !on_way_back)
            t->restart_pc = 0;
        return;
    }
    uint8_t insn[2];
    if (pt_read_memory(e, r->rip - 2, insn, 2) != 2 || insn[0] != 0x0f || insn[1] != 0x05)
        return;
    if (has_deliverable_signal(e->pid, t->tid))
        return;
    r->rax = (unsigned long long)-ERESTARTNOHAND;
    shorten_timed_wait(e, t, r);
    if (ptrace(PTRACE_SETREGS, t->tid, 0, r) == 0)
        e->n_eintr_fixups++;
}

/* Work at the interrupt stop we asked for: restart fix-up, and the trap-as-interrupted race
 * (docs/kernel-facts.md §2.3): pc one past a breakpoint of ours with an int3 SIGTRAP queued is a hit; a queued
 * hardware trap is a watchpoint hit, taken now, while DR6 still names the registers GDB set (GDB
 * re-inserts its watchpoints in another order before the next resume). */
static int at_interrupt_stop(pt_engine *e, pt_thread *t)
{
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return 0;
    /* A trap already counted (stale_trap) is the one queued: no instruction ran since, so no new hit
     * (and pc - 1 on a breakpoint is then a pass by emulate_over, not an int3 executed). */
    int after_bp = e->nbps && bp_at(e, r.rip - 1);
    int code = !t->stale_trap && (after_bp || e->dr7) ? queued_trap(e->pid, t->tid) : 0;
    if ((code == SI_KERNEL || code == -1) && after_bp) {
        r.rip -= 1;
        if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) == 0) {
            t->stale_trap = SI_KERNEL;
            t->on_breakpoint = 1;
            t->bp_pc = r.rip;
            return record(t, PT_EV_BREAKPOINT, SIGTRAP, r.rip, 0);
        }
    }
    uint64_t dr6 = 0;
    if (code == TRAP_HWBKPT && pt_get_dr6(t->tid, &dr6) == 0 && (dr6 & 0xf)) {
        ptrace(PTRACE_POKEUSER, t->tid, (void *)DR_OFFSET(6), 0);
        t->stale_trap = TRAP_HWBKPT;
        return record(t, PT_EV_HWTRAP, SIGTRAP, r.rip, dr6);
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
        route_or_remember(e, tid, status);
        return 0;
    }
    if ((e->options & PT_OPT_THREAD_EXITS) && t->state != PT_GONE) {
        /* GDB asked to hear of thread exits (QThreadEvents, while it stops every thread in non-stop:
         * it waits for each thread it asked to stop, and this one never will).  Kept in the table,
         * stopped, until the event is taken (a thread with an event is never resumed). */
        set_state(e, t, PT_STOPPED);
        t->exiting = 1;
        return record(t, PT_EV_THREAD_EXITED, 0, 0, (uint64_t)(unsigned)status);
    }
    set_state(e, t, PT_GONE);
    t->ev_kind = PT_EV_NONE;
    return 0;
}

static int stopped_on_request(pt_engine *e, pt_thread *t);

static int on_event_stop(pt_engine *e, pt_thread *t, int sig)
{
    if (t->awaiting_initial) { /* a seized clone child's first stop (ptrace(2): no SIGSTOP under SEIZE) */
        t->awaiting_initial = 0;
        if (e->dr7)
            apply_debugregs(e, t->tid); /* debug registers are per thread and not inherited */
        if (t->want_stop)
            return stopped_on_request(e, t);
        return keep_or_resume(e, t);
    }
    if (sig != SIGTRAP) /* group-stop (SIGSTOP/SIGTSTP/...): resuming overrides it, as gdbserver does */
        return keep_or_resume(e, t);
    int ours = t->interrupt_pending;
    t->interrupt_pending = 0;
    if (ours && t->want_stop)
        return stopped_on_request(e, t);
    if (e->stopping || (ours && e->world_stopped))
        return at_interrupt_stop(e, t);
    /* The interrupt stayed armed while the thread stopped for something else; this is its echo after
     * the resume (docs/kernel-facts.md §2.2).  Re-issue the same resume. */
    e->n_stale_stops++;
    return keep_or_resume(e, t);
}

/* A thread the kernel attached to us at its parent's clone (PTRACE_O_TRACECLONE): recorded as running
 * towards its first stop, or, when that stop came first and was parked, handled now. */
static void adopt_clone(pt_engine *e, int32_t newtid)
{
    if (find(e, newtid))
        return;
    pt_thread *n = add_thread(e, newtid, PT_RUNNING);
    if (!n)
        return;
    n->awaiting_initial = 1;
    int st;
    if (take_orphan(e, newtid, &st))
        on_status(e, newtid, st);
}

static int on_clone(pt_engine *e, pt_thread *t)
{
    unsigned long newtid = 0;
    int32_t parent = t->tid;
    if (ptrace(PTRACE_GETEVENTMSG, parent, 0, &newtid) == 0)
        adopt_clone(e, (int32_t)newtid);
    return keep_or_resume(e, t);
}

/* A fork child has a copy of the parent's memory, int3s included: put the original bytes back. */
static void remove_breakpoints_from_child(pt_engine *e, int child)
{
    if (!e->nbps)
        return;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", child);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        write_all_breakpoints(e, fd, 1);
        close(fd);
    }
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
    } else {
        remove_breakpoints_from_child(e, child);
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

/* Whether one of our int3s was at addr until lately (and is not there now). */
static int removed_lately(pt_engine *e, uint64_t addr)
{
    for (int i = 0; i < 16; i++)
        if (e->removed_bps[i] == addr && addr)
            return !bp_at(e, addr);
    return 0;
}

static int on_sigtrap(pt_engine *e, pt_thread *t)
{
    siginfo_t si;
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) < 0 || ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return keep_or_resume(e, t); /* vanished (ESRCH): its exit status follows */
    if (t->stale_trap && si.si_code == t->stale_trap) { /* a trap we already counted at an interrupt stop */
        t->stale_trap = 0;
        return keep_or_resume(e, t);
    }
    if (si.si_code == SI_KERNEL && e->nbps && bp_at(e, r.rip - 1)) {
        r.rip -= 1; /* int3 leaves pc one past the breakpoint: rewind at once */
        ptrace(PTRACE_SETREGS, t->tid, 0, &r);
        t->on_breakpoint = 1;
        t->bp_pc = r.rip;
        return record(t, PT_EV_BREAKPOINT, SIGTRAP, r.rip, 0);
    }
    if (si.si_code == SI_KERNEL && removed_lately(e, r.rip - 1)) {
        /* An int3 of ours, hit just before it was removed (in non-stop threads run while GDB edits
         * breakpoints): the original instruction is back, so rewind to it and go on with no hit to
         * report, as gdbserver discards a pending breakpoint stop whose breakpoint is gone. */
        r.rip -= 1;
        ptrace(PTRACE_SETREGS, t->tid, 0, &r);
        e->n_stale_stops++;
        return keep_or_resume(e, t);
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
        t->step_unfinished = 0;
        if (dr6)
            return record(t, PT_EV_HWTRAP, SIGTRAP, r.rip, dr6);
    step_done:
        t->step_unfinished = 0;
        if (t->action == PT_ACT_RANGE && !e->stopping && !e->world_stopped && r.rip >= t->range_start &&
            r.rip < t->range_end)
            return resume_thread(e, t, 0); /* still inside the range: keep stepping, nothing to report */
        return record(t, PT_EV_STEP, SIGTRAP, r.rip, 0);
    }
    if (t->step_unfinished && si.si_code == TRAP_TRACE && !stepping) {
        /* The trap of a step an interrupt overtook (the stop-all came first, the trap stayed
         * queued), delivered now that the thread continues: it ends nothing, so nothing is
         * reported (gdb.threads/pending-step.exp: a "spurious SIGTRAP" after `next`). */
        t->step_unfinished = 0;
        e->n_stale_stops++;
        return keep_or_resume(e, t);
    }
    return record(t, PT_EV_SIGNAL, SIGTRAP, r.rip, (uint64_t)si.si_code);
}

/* The signal of this signal-delivery-stop was queued by this process (resume_thread's tgkill). */
static int sent_by_us(pt_thread *t)
{
    siginfo_t si;
    return ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) == 0 && si.si_code == SI_TKILL &&
           si.si_pid == getpid();
}

static int on_signal(pt_engine *e, pt_thread *t, int sig)
{
    uint64_t bit = sig > 0 && sig <= 64 ? 1ull << (sig - 1) : 0;
    if ((t->inject_mask & bit) && sent_by_us(t)) { /* GDB's signal, on its way in: deliver it */
        t->inject_mask &= ~bit;
        t->deliver_sig = sig;
        return keep_or_resume(e, t);
    }
    if (sig == SIGTRAP)
        return on_sigtrap(e, t);
    /* QPassSignals: deliver without a stop, except to a thread GDB steps: GDB must see the signal
     * to step over its handler (a step-resume breakpoint) rather than into it, as gdbserver's
     * wait_1 reports it when last_resume_kind is resume_step (gdb.base/sigstep.exp). */
    if (sig < 65 && ((e->pass_signals >> (sig - 1)) & 1) && t->action != PT_ACT_STEP &&
        t->action != PT_ACT_RANGE) {
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
        /* A tid we do not know: a clone or fork child whose first stop came before its parent's
         * PTRACE_EVENT_CLONE/FORK (wait(2) looks at the newest tracee first, so under thread churn
         * that is the usual order), or a peer's thread.  Parked, the child stays stopped until its
         * parent's event claims it (adopt_clone, on_fork), as gdbserver keeps such stops
         * (stopped_pids): that tells a thread from a fork child without reading /proc/TID/status,
         * which cost a kernel text rendering per new thread, and a parked child cannot run and end
         * before its parent's event is seen, so the tid that event names is always its own. */
        route_or_remember(e, tid, status);
        return 0;
    }
    if (t->state == PT_RUNNING)
        set_state(e, t, PT_STOPPED);
    else if (t->state == PT_EXITING)
        t->state = PT_STOPPED;
    int event = (unsigned)status >> 16;
    int sig = WSTOPSIG(status);
    t->at_signal_stop = is_signal_delivery_stop(event, sig);
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

/* Collect every status the kernel has ready, without blocking, as one batch (after the status
 * `tid` already collected, when tid > 0).  While the world runs, a thread whose stop has nothing to
 * report is resumed only when the batch ends, not at once: resumed at once it could stop again
 * before the batch ended (it clones, its new thread stops, it ends), so under thread churn the drain
 * never ran dry, and since wait(2) looks at the newest tracee first, a hit of the oldest thread, the
 * main one, waited behind the churn for seconds.  A batch now ends once every thread has stopped at
 * most once (gdbserver's wait loop too collects every pending status before it resumes any thread).
 * With an event found and `hold` (all-stop: the world is stopped next) the deferred threads stay
 * stopped, one interrupt fewer each; otherwise they run again.  Returns 1 when an event was found. */
static int drain_from(pt_engine *e, int hold, int tid, int status)
{
    int found = 0, st;
    e->collecting = 1;
    if (tid > 0)
        found |= on_status(e, tid, status);
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
        break;
    }
    e->collecting = 0;
    settle_deferred(e, hold && found);
    return found;
}

static int drain(pt_engine *e)
{
    return drain_from(e, 1, 0, 0);
}

static void interrupt_running(pt_engine *e);
static int resume_masked(pt_engine *e);
static int wait_resumed(pt_engine *e, int timeout_ms, int extra_fd, int just_resumed);
static int stop_all_masked(pt_engine *e);

/* Threads we wait for but that can no longer stop (a zombie leader, a thread killed by SIGKILL whose
 * status went elsewhere) are marked exiting, so a stop-all never hangs on them.  /proc stays here:
 * such a thread gives no wait status at all (a zombie leader's comes only once every other thread is
 * gone), so its state file is the only witness; read only after 100 ms without the stops we asked for,
 * never per event. */
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

/* Collect the stops of many interrupted threads by tid.  waitpid(-1) walks every tracee of the tracer
 * (wait_consider_task on each entry of its ptraced list) even when one status is ready, so collecting n
 * stops that way costs O(n^2): 135 us a call with 1,000 threads, 960 us with 4,000 (measured on 6.18).
 * waitpid(tid) looks the one task up (do_wait_pid, Linux 6.1+): 6-10 us a call at any count.  Statuses
 * of threads not in the table (a clone child before its parent's event, another engine's threads) stay
 * queued in the kernel for drain(), which takes over once few threads are left running. */
#define MANY_RUNNING 16

static int collect_by_tid(pt_engine *e)
{
    int found = 0, st;
    for (int32_t i = 0; i < e->nthreads; i++) { /* on_status may append threads: re-read both each time */
        pt_thread *t = e->threads[i];
        if (t->state != PT_RUNNING)
            continue;
        pid_t r = waitpid(t->tid, &st, __WALL | WNOHANG);
        if (r > 0)
            found |= on_status(e, r, st);
    }
    return found;
}

/* Wait (blocking, in slices) until no thread is running. */
static int wait_all_stopped(pt_engine *e)
{
    int found = 0;
    uint64_t next_check = pt_now_ns() + 100000000ull;
    while (e->nrunning > 0) {
        found |= e->nrunning > MANY_RUNNING ? collect_by_tid(e) : drain(e);
        if (e->nrunning <= 0 || e->exited)
            break;
        int slept = e->nrunning <= FEW_RUNNING ? sleep_in_waitpid(e, 0, &found) : -ENOSYS;
        if (slept >= 0) {
            uint64_t now = pt_now_ns();
            if (slept == 0 && now >= next_check) { /* as below: retire what cannot stop, ask again */
                next_check = now + 100000000ull;
                retire_unstoppable(e);
                if (e->stopping)
                    interrupt_running(e);
            }
            continue;
        }
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

/* Carry out the instruction under a breakpoint in the tracer instead of stepping the thread over it,
 * for the instructions functions start with (push of a register, endbr64, nop), as the kernel's
 * uprobes do.  The int3 stays in place, so no other thread need be held and the step's two context
 * switches and two text writes are saved.  Only for a plain continue in 64-bit code with no debug
 * register in use (the push's store could hit a watchpoint).  Returns 1 when the thread was moved
 * past the instruction, 0 when it must be stepped. */
static int emulate_over(pt_engine *e, pt_thread *t, uint64_t pc)
{
    pt_breakpoint *b = bp_at(e, pc);
    if (!b || e->dr7 || e->vfork_parent_tid || t->action != PT_ACT_CONT || t->exiting)
        return 0;
    uint8_t insn[4] = {b->orig, 0, 0, 0};
    int len = 0, reg = -1;
    if (insn[0] == 0x90) {
        len = 1; /* nop */
    } else if (insn[0] >= 0x50 && insn[0] <= 0x57) {
        len = 1; /* push r64 */
        reg = insn[0] - 0x50;
    } else if (insn[0] == 0x41 || insn[0] == 0xf3) {
        if (pt_read_memory(e, pc + 1, insn + 1, 3) != 3)
            return 0;
        if (insn[0] == 0x41 && insn[1] >= 0x50 && insn[1] <= 0x57) {
            len = 2; /* push r8..r15 */
            reg = 8 + insn[1] - 0x50;
        } else if (insn[0] == 0xf3 && insn[1] == 0x0f && insn[2] == 0x1e && insn[3] == 0xfa) {
            len = 4; /* endbr64 */
        }
    }
    if (!len)
        return 0;
    struct user_regs_struct r;
    if (ptrace(PTRACE_GETREGS, t->tid, 0, &r) < 0 || r.rip != pc || r.cs != 0x33)
        return 0;
    if (reg >= 0) {
        unsigned long long *gpr[16] = {&r.rax, &r.rcx, &r.rdx, &r.rbx, &r.rsp, &r.rbp, &r.rsi, &r.rdi,
                                       &r.r8,  &r.r9,  &r.r10, &r.r11, &r.r12, &r.r13, &r.r14, &r.r15};
        uint64_t value = *gpr[reg];
        struct iovec local = {&value, sizeof value}, remote = {(void *)(uintptr_t)(r.rsp - 8), 8};
        if (process_vm_writev(e->pid, &local, 1, &remote, 1, 0) != 8)
            return 0; /* e.g. the stack must grow first: let the real instruction fault it in */
        r.rsp -= 8;
    }
    r.rip += (unsigned long long)len;
    if (ptrace(PTRACE_SETREGS, t->tid, 0, &r) < 0)
        return 0;
    t->on_breakpoint = 0;
    e->n_emulated++;
    return 1;
}

/* Wait for the next status of the thread stepping over a breakpoint, the others held.  A status of
 * another thread then means it is being killed: an execve in the step kills every other thread and
 * waits until each has left its PTRACE_EVENT_EXIT stop (ptrace(2), "execve(2) under ptrace"), as
 * exit_group does, so such a thread is let go on dying (waiting for the stepper alone deadlocked).
 * Anything else is kept as any held thread's.  The exec itself is reported from the leader's tid
 * when a non-leader execs: that status is the stepper's, and is returned with its tid. */
static pid_t wait_for_stepper(pt_engine *e, int tid, int *st)
{
    for (;;) {
        pid_t r = waitpid(-1, st, __WALL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || r == tid)
            return r;
        if (WIFSTOPPED(*st) && ((unsigned)*st >> 16) == PTRACE_EVENT_EXEC && find(e, r))
            return r;
        pt_thread *o = find(e, r);
        if (o && WIFSTOPPED(*st) && ((unsigned)*st >> 16) == PTRACE_EVENT_EXIT) {
            o->exiting = 1;
            if (o->state == PT_RUNNING)
                set_state(e, o, PT_STOPPED);
            resume_thread(e, o, 0); /* exiting: PTRACE_CONT, never waited for again */
            continue;
        }
        int held = e->world_stopped;
        e->world_stopped = 1;
        on_status(e, r, *st);
        e->world_stopped = held;
    }
}

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
        pid_t r = wait_for_stepper(e, tid, &st);
        if (r < 0) {
            set_state(e, t, PT_EXITING);
            break;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            reported = on_exit_status(e, t, tid, st);
            break;
        }
        int event = (unsigned)st >> 16, sig = WSTOPSIG(st);
        t->at_signal_stop = is_signal_delivery_stop(event, sig);
        if (event == PTRACE_EVENT_STOP) { /* the echo of an old interrupt, in place of the step trap */
            t->interrupt_pending = 0;
            e->n_stale_stops++;
            continue;
        }
        if (event == PTRACE_EVENT_CLONE) { /* the child is held too (the world is stopped) */
            unsigned long nt = 0;
            if (ptrace(PTRACE_GETEVENTMSG, tid, 0, &nt) == 0)
                adopt_clone(e, (int32_t)nt);
            continue;
        }
        if (event == PTRACE_EVENT_EXIT) {
            t->exiting = 1;
            break;
        }
        if (event != 0) { /* exec, fork, vfork: handled the usual way, world held */
            e->world_stopped = 1;
            reported = on_status(e, r, st); /* r: the leader's tid when a non-leader exec'd */
            t = find(e, r);
            break;
        }
        if (sig == SIGTRAP) {
            siginfo_t si; /* only a queued trap we already counted can come before the step's */
            if (t->stale_trap && ptrace(PTRACE_GETSIGINFO, tid, 0, &si) == 0 && si.si_code == t->stale_trap) {
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
    if (choose_report(e, 1)) { /* a resumed thread has an event waiting: report it, run nothing */
        keep_action_signals(e);
        return 1;
    }
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
        struct user_regs_struct r; /* its pc is bp_pc: pt_set_regs clears on_breakpoint on a move */
        if (!bp_at(e, t->bp_pc))
            continue;
        if (emulate_over(e, t, t->bp_pc))
            continue;
        int32_t tid = t->tid;
        int got = step_over(e, t, t->bp_pc);
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
        keep_action_signals(e);
        e->world_stopped = 1;
        return e->exited ? choose_report(e, 0) : 1;
    }
    if (!any)
        return -EDEADLK; /* nothing to run */
    e->world_stopped = 0;
    /* Order matters on a small machine (docs/design-notes.md, "Resume order"): the reporter first if
     * it continues, so that it takes an idle CPU before a busy thread does, then the others from a
     * place that moves on each time: the thread resumed last gets a CPU last, and a fixed order
     * starved it (a main thread resumed last overslept a 1 s epoll_wait by half a second at 4,000
     * stops/s).  Threads that step go last: a step ends within microseconds and the world stops
     * again, so the threads that continue need the head start, or on a loaded machine they never run
     * during a `next` with scheduler-locking off (gdb.threads/schedlock.exp, "other threads ran"). */
    int boost = e->nthreads > 2 * online_cpus() ? boost_begin() : NOT_BOOSTED;
    int rc = 0;
    pt_thread *reporter = e->report_tid ? find(e, e->report_tid) : NULL;
    if (reporter && reporter->action != PT_ACT_CONT)
        reporter = NULL;
    uint32_t start = e->resume_rotor++;
    for (int steppers = 0; steppers < 2 && rc == 0; steppers++) {
        for (int32_t i = reporter && !steppers ? -1 : 0; i < e->nthreads && rc == 0; i++) {
            pt_thread *t = i < 0 ? reporter : e->threads[(start + (uint32_t)i) % (uint32_t)e->nthreads];
            if (t->state != PT_STOPPED || t->action == PT_ACT_NONE || (i >= 0 && t == reporter) ||
                (t->action != PT_ACT_CONT) != steppers)
                continue;
            rc = resume_thread(e, t, take_resume_signal(e, t));
        }
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
    int any_ran = 0;
    for (int32_t i = 0; i < e->nthreads; i++)
        any_ran |= e->threads[i]->state != PT_GONE && e->threads[i]->action != PT_ACT_NONE;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        /* Never a thread GDB held: if every one it resumed has an event (its step ended as the
         * interrupt came), that event is reported instead (GDB asserts its step-over thread is the
         * one that stops: detach-step-over.exp). */
        if (t->state != PT_STOPPED || t->ev_kind != PT_EV_NONE || (any_ran && t->action == PT_ACT_NONE))
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

/* With no thread running, can a status still come?  Only from a thread on its way out; a zombie
 * leader (it exited while held threads live on) gives none until they are gone, as gdbserver says
 * with N (no-unwaited-for-left.exp).  A zombie leader with no thread left is the process ending: its
 * status is on the way (a vfork child, whose parent is not us, showed Z before waitpid had it). */
static int exit_status_due(pt_engine *e)
{
    /* The stat file is read only for a leader already marked exiting, for the same reason as in
     * retire_unstoppable: a zombie leader tells nothing through wait(2) while others live. */
    int others = 0;
    for (int32_t i = 0; i < e->nthreads; i++)
        others |= e->threads[i]->tid != e->pid && e->threads[i]->state != PT_GONE;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->state == PT_EXITING && !(t->tid == e->pid && others && task_state(e->pid, t->tid) == 'Z'))
            return 1;
    }
    return 0;
}

/* Sleep in ppoll on SIGCHLD's eventfd, the stop-request eventfd and extra_fd (when >= 0) until one
 * is ready or the deadline passes (timeout_ms < 0: none).  Returns how many are ready (0 after a
 * signal), -ETIME at the deadline, or -errno.  SIGCHLD's eventfd is drained here. */
static int sleep_until_ready(pt_engine *e, struct pollfd p[3], int extra_fd, int timeout_ms,
                             uint64_t deadline)
{
    p[0] = (struct pollfd){chld_wakefd, POLLIN, 0};
    p[1] = (struct pollfd){e->wakefd, POLLIN, 0};
    p[2] = (struct pollfd){extra_fd, POLLIN, 0};
    int wait_ms = -1;
    if (timeout_ms >= 0) {
        uint64_t now = pt_now_ns();
        if (now >= deadline)
            return -ETIME;
        wait_ms = (int)((deadline - now + 999999) / 1000000);
    }
    int n = sleep_on(e, p, extra_fd >= 0 ? 3 : 2, wait_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (n > 0 && p[0].revents)
        drain_fd(chld_wakefd);
    return n;
}

/* just_resumed: the world was resumed a moment ago, so the first look at waitpid would find nothing;
 * sleep first (a stop that came already has its SIGCHLD pending and ends the sleep at once). */
static int wait_resumed(pt_engine *e, int timeout_ms, int extra_fd, int just_resumed)
{
    uint64_t deadline = timeout_ms >= 0 ? pt_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    int found = 0; /* an event that sleep_in_waitpid() collected */
    for (int first = 1;; first = 0) {
        /* No pointer to a record is held between rounds: the dead threads' records go now, not at the
         * next stop, or a long wait under thread churn gathered thousands for every loop to walk. */
        pt_prune(e);
        if (take_stop_request(e))
            e->stop_requested = 1; /* looked at every round: a stream of hits must not starve it */
        if (!(first && just_resumed) && (found || e->peer_event || drain(e) || e->exited)) {
            found = 0;
            if (!e->exited)
                stop_all_masked(e);
            pt_prune(e);
            e->world_stopped = 1;
            if (e->peer_event) /* a peer process has the event: the caller holds every engine, and */
                return 4;      /* pt_hold reports a stop request taken here (stop_requested stays) */
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
        if (e->nrunning <= 0 && !exit_status_due(e))
            return 3;
        if (extra_fd < 0 && e->nrunning <= FEW_RUNNING) { /* else ppoll (see "Sleeping in waitpid") */
            if (timeout_ms >= 0 && pt_now_ns() >= deadline)
                return 0;
            if (sleep_in_waitpid(e, timeout_ms >= 0 ? deadline : 0, &found) >= 0)
                continue; /* a status (in found) or a wake: the next round looks */
        }
        struct pollfd p[3];
        int n = sleep_until_ready(e, p, extra_fd, timeout_ms, deadline);
        if (n == -ETIME)
            return 0;
        if (n <= 0) {
            if (n < 0)
                return n;
            continue;
        }
        if (p[1].revents && take_stop_request(e))
            e->stop_requested = 1;
        if (extra_fd >= 0 && p[2].revents) {
            if (drain(e))
                found = 1; /* events first; the input is still there next round */
            else if (!e->stop_requested)
                return 2;
        }
    }
}

/* Give every thread the same action (signals set by the caller are kept). */
int pt_set_actions(pt_engine *e, int action)
{
    for (int32_t i = 0; i < e->nthreads; i++)
        e->threads[i]->action = action;
    return 0;
}

/* Every thread's action for the next resume in one call: tids[i] gets actions[i] and sigs[i], every
   thread not named PT_ACT_NONE (its signal left as it is), a named tid we do not trace is skipped.
   Returns how many named threads were found. A resume of all threads wrote two fields per thread
   through cffi, one Python call each, at every resume of GDB's breakpoint loop. */
int pt_set_thread_actions(pt_engine *e, const int32_t *tids, const int32_t *actions, const int32_t *sigs, int32_t n)
{
    int found = 0;
    pt_set_actions(e, PT_ACT_NONE);
    for (int32_t i = 0; i < n; i++) {
        pt_thread *t = find(e, tids[i]);
        if (!t)
            continue;
        t->action = actions[i];
        t->action_sig = sigs[i];
        found++;
    }
    return found;
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
    __atomic_store_n(&e->stop_flag, 1, __ATOMIC_SEQ_CST);
    if (write(e->wakefd, &one, sizeof one) != sizeof one)
        return -errno;
    if (__atomic_load_n(&e->blocking, __ATOMIC_SEQ_CST) && e->tracer_tid)
        syscall(SYS_tgkill, getpid(), e->tracer_tid, wake_sig);
    return 0;
}

/* Withdraw a pt_request_stop that no wait has acted on yet (another event was reported first). */
int pt_cancel_stop(pt_engine *e)
{
    int taken = take_stop_request(e) || e->stop_requested;
    e->stop_requested = 0;
    return taken;
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
    install_wake_signal();
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
    pt_unlink_peer(e);
    for (int32_t i = 0; i < e->nthreads; i++)
        free(e->threads[i]);
    free(e->threads);
    free(e->hash);
    free(e->bps);
    free(e->orphan_tid);
    free(e->orphan_status);
    free(e->due);
    if (e->memfd >= 0)
        close(e->memfd);
    if (e->wakefd >= 0)
        close(e->wakefd);
    if (e->timer_state)
        timer_delete((timer_t)e->wake_timer);
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
                    adopt_clone(e, tid); /* already ours: a clone child auto-attached since the last pass */
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

/* Consume a SIGTRAP still queued for a trap we already reported; delivered after detach it would
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
            ptrace(PTRACE_GETSIGINFO, t->tid, 0, &si) == 0 && si.si_code == t->stale_trap)
            t->stale_trap = 0;
    }
    (void)e;
}

/* The child of a fork event still pending (GDB never heard of it) when the parent is let go: it must
 * not stay stopped under us.  Detached without our int3s (a vfork child shares the parent's memory,
 * whose breakpoints the caller has lifted already), or killed.  gdb.threads/pending-fork-event-detach.exp. */
static void settle_unreported_children(pt_engine *e, int kill_them)
{
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (!has_event(t) || (t->ev_kind != PT_EV_FORK && t->ev_kind != PT_EV_VFORK))
            continue;
        int child = (int)t->ev_data;
        if (kill_them) {
            kill(child, SIGKILL);
            ptrace(PTRACE_CONT, child, 0, 0);
        } else {
            if (t->ev_kind == PT_EV_FORK)
                remove_breakpoints_from_child(e, child);
            ptrace(PTRACE_DETACH, child, 0, 0);
        }
        t->ev_kind = PT_EV_NONE;
    }
}

/* True while the thread (a zombie too) still has this process as its tracer.  Read through
 * /proc/TID, not /proc/PID/task/TID: while the leader dies, lookups and listings under its task
 * directory fail now and then, and a thread taken for gone there stayed traced for ever. */
static int traced_by_us(int tid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", tid);
    int rc = read_proc_file(path, buf, sizeof buf);
    if (rc < 0)
        return rc != -ENOENT; /* ENOENT: released; any other failure proves nothing */
    const char *tracer = strstr(buf, "\nTracerPid:");
    return tracer && atoi(tracer + 11) == getpid();
}

/* The state letter of /proc/TID/stat, 0 if gone (read as above, not under the leader's task dir). */
static char thread_state(int tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", tid);
    return state_letter(path);
}

/* True while a thread of the table other than the leader is alive (neither zombie nor dead). */
static int others_live(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++) {
        char s = e->threads[i]->tid == e->pid ? 0 : thread_state(e->threads[i]->tid);
        if (s && s != 'Z' && s != 'X')
            return 1;
    }
    return 0;
}

/* Let go a thread still traced by us that was in no ptrace-stop when PTRACE_DETACH came: a clone
 * child on its way to its first stop, or a thread that SIGKILL took out of its stop because a thread
 * detached before it ended the process (exit_group), now on its way to its PTRACE_EVENT_EXIT stop.
 * Its status is due: wait for it until `deadline` and detach it at that stop; an exit status needs
 * nothing more (it reaps a traced zombie).  Left traced, the thread waits in its stop for ever, and
 * the process never ends (gdb.threads/process-dies-while-detaching.exp; gdbserver's detach_one_lwp
 * reaps such a thread too).  Returns 1 when the thread was let go or is gone. */
static int detach_when_stopped(pt_engine *e, int tid, uint64_t deadline)
{
    for (int spins = 0;; spins++) {
        int st;
        int got = take_orphan(e, tid, &st) || waitpid(tid, &st, __WALL | WNOHANG) == tid;
        if (got && (WIFEXITED(st) || WIFSIGNALED(st)))
            return 1;
        if ((got && ptrace(PTRACE_DETACH, tid, 0, 0) == 0) || !traced_by_us(tid))
            return 1;
        if (pt_now_ns() >= deadline)
            return 0;
        if (spins > 100) {
            struct timespec nap = {0, 200000};
            nanosleep(&nap, NULL);
        } else {
            sched_yield();
        }
    }
}

/* A thread of the process still traced by us that the thread table does not hold (a clone child
 * whose first stop went astray in the ring of engines): let it go too. */
static void detach_strays(pt_engine *e, uint64_t deadline)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", e->pid);
    DIR *dir = opendir(path);
    if (!dir)
        return;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        int tid = atoi(de->d_name);
        /* the threads of the table are seen to by the caller */
        if (tid <= 0 || find(e, tid) || !traced_by_us(tid))
            continue;
        if (ptrace(PTRACE_DETACH, tid, 0, 0) < 0)
            detach_when_stopped(e, tid, deadline);
        e->n_strays++;
    }
    closedir(dir);
}

int pt_detach(pt_engine *e)
{
    if (e->exited)
        return 0;
    if (!e->world_stopped)
        stop_all_masked(e);
    /* The int3s out first: a vfork child shares this memory and runs the moment it is detached. */
    write_all_breakpoints(e, e->memfd, 1);
    settle_unreported_children(e, 0);
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
            if (sig && !t->at_signal_stop && syscall(SYS_tgkill, e->pid, t->tid, sig) == 0)
                sig = 0; /* as in resume_thread: only a signal-delivery-stop can take it */
            /* one in no ptrace-stop cannot be detached now: detach_when_stopped waits for its stop */
            if (ptrace(PTRACE_DETACH, t->tid, 0, (void *)(uintptr_t)sig) == 0)
                set_state(e, t, PT_GONE);
        }
    }
    /* Those in no ptrace-stop just now: a clone child not stopped yet, one leaving for its exit stop
     * because a thread let go above ended the process, a zombie to reap.  A second for them all (GDB
     * waits two for the reply); the leader last again, its exit is reported once the others are gone. */
    uint64_t deadline = pt_now_ns() + 1000000000ull;
    detach_strays(e, deadline);
    for (int pass = 0; pass < 2; pass++) {
        for (int32_t i = 0; i < e->nthreads; i++) {
            pt_thread *t = e->threads[i];
            if ((pass == 0) == (t->tid == e->pid) || t->state == PT_GONE)
                continue;
            if (t->tid == e->pid && thread_state(e->pid) == 'Z' && others_live(e))
                continue; /* a zombie leader is reported only when the process ends: not now */
            e->n_late_detaches++;
            if (detach_when_stopped(e, t->tid, deadline))
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
    settle_unreported_children(e, 1);
    kill(e->pid, SIGKILL);
    /* Threads in a ptrace-stop (an exit stop, or stopped by us) are let go so that they can die; a
     * wait that never blocks for long keeps a vanished status from hanging us (docs/kernel-facts.md §2.8). */
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
            route_or_remember(e, r, st);
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
        drain_from(e, 0, 0, 0);
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

/* ------------------------------------------------------------------------------------------------ */
/* non-stop mode (GDB manual, "Remote Non-Stop"; docs/design-notes.md, "Non-stop mode")             */
/*                                                                                                   */
/* Threads run and stop one by one: an event stops only its own thread (on_status leaves it stopped  */
/* with its event recorded, and resumes threads after unreported stops, since world_stopped is 0),   */
/* pt_wait_one hands the events over one at a time, pt_resume_some starts some stopped threads while */
/* others run, pt_stop_thread stops one.  The only stop-all is the one a step over a breakpoint      */
/* needs, after which the threads it stopped run again.                                              */

/* Report a thread stopped by pt_stop_thread: as a hit when an int3 raced the interrupt, else as an
 * interrupt (GDB shows it as stopped with signal 0). */
static int stopped_on_request(pt_engine *e, pt_thread *t)
{
    t->want_stop = 0;
    if (at_interrupt_stop(e, t))
        return 1;
    struct user_regs_struct r;
    uint64_t pc = ptrace(PTRACE_GETREGS, t->tid, 0, &r) == 0 ? r.rip : 0;
    return record(t, PT_EV_INTERRUPT, 0, pc, 0);
}

/* Stop one running thread (vCont;t).  Returns 1 when a stop was requested, 0 when the thread is
 * not running (already stopped, or exiting: nothing will be reported for it), -ESRCH if unknown. */
static int stop_thread_masked(pt_engine *e, int32_t tid)
{
    pt_thread *t = find(e, tid);
    if (!t)
        return -ESRCH;
    if (t->state != PT_RUNNING)
        return 0;
    t->want_stop = 1;
    if (t->awaiting_initial) /* its first stop is on its way; on_event_stop reports it */
        return 1;
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) { /* ESRCH: exiting; its exit status follows */
        t->want_stop = 0;
        set_state(e, t, PT_EXITING);
        return 0;
    }
    t->interrupt_pending = 1;
    e->n_interrupts++;
    return 1;
}

/* Whether a stopped thread about to be resumed sits on one of our breakpoints. */
static int needs_step_over(pt_engine *e, pt_thread *t)
{
    if (t->state != PT_STOPPED || t->action == PT_ACT_NONE || has_event(t) || t->exiting || !e->nbps ||
        e->vfork_parent_tid || !t->on_breakpoint)
        return 0;
    struct user_regs_struct r;
    return ptrace(PTRACE_GETREGS, t->tid, 0, &r) == 0 && bp_at(e, r.rip);
}

/* Step the threads to be resumed over the breakpoints under them, the world held stopped (the
 * caller stopped it); a step that was all GDB asked for is recorded as done. */
static void step_over_all(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (!needs_step_over(e, t))
            continue;
        struct user_regs_struct r;
        ptrace(PTRACE_GETREGS, t->tid, 0, &r);
        int32_t tid = t->tid;
        int got = step_over(e, t, r.rip);
        t = find(e, tid);
        if (!got && t && t->state == PT_STOPPED && !t->exiting && t->action != PT_ACT_CONT) {
            ptrace(PTRACE_GETREGS, t->tid, 0, &r);
            if (t->action == PT_ACT_STEP || r.rip < t->range_start || r.rip >= t->range_end)
                record(t, PT_EV_STEP, SIGTRAP, r.rip, 0);
        }
    }
    if (e->nrunning > 0) { /* clone children born during a step over: hold them too */
        e->stopping = 1;
        wait_all_stopped(e);
        e->stopping = 0;
    }
}

/* Start every stopped thread whose action is set (the caller sets PT_ACT_NONE on the stopped threads
 * that stay stopped and leaves running threads alone).  A thread with an event not yet handed over
 * stays stopped: pt_wait_one reports it.  When a thread must step over a breakpoint, every running
 * thread is stopped first, as gdbserver's stop_all_lwps does, so none can pass the lifted int3; the
 * threads that this stop caught without an event of their own then run again with their former
 * action (a thread caught mid-step keeps stepping). */
static int resume_some_masked(pt_engine *e)
{
    pt_prune(e);
    if (e->exited)
        return 0;
    for (int32_t i = 0; i < e->nthreads; i++) { /* no phantom hits (see resume_masked) */
        pt_thread *t = e->threads[i];
        if (t->ev_kind == PT_EV_BREAKPOINT && t->state == PT_STOPPED && t->action != PT_ACT_NONE &&
            !bp_at(e, t->ev_pc))
            t->ev_kind = PT_EV_NONE;
    }
    int need = 0;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (!needs_step_over(e, t))
            continue;
        if (emulate_over(e, t, t->bp_pc)) /* on_breakpoint: pc is bp_pc, emulate_over checks it */
            continue; /* past the breakpoint without a step: nothing need stop */
        need = 1;
    }
    if (need) {
        if (e->nrunning > 0)
            stop_all_masked(e); /* events caught meanwhile stay pending; the threads keep their action */
        step_over_all(e);
        pt_prune(e);
        if (e->exited) {
            e->world_stopped = 0;
            return 0;
        }
    }
    e->world_stopped = 0;
    int rc = 0;
    for (int32_t i = 0; i < e->nthreads && rc == 0; i++) {
        pt_thread *t = e->threads[i];
        if (t->state != PT_STOPPED || t->action == PT_ACT_NONE || has_event(t))
            continue;
        if (t->action != PT_ACT_CONT)
            e->last_stepped_tid = t->tid;
        rc = resume_thread(e, t, take_resume_signal(e, t));
    }
    return rc;
}

/* Wait for one thread's event with the others left as they are.  Returns 1 when an event is to be
 * reported (e->reported, or the process ended), 0 on timeout, 2 when extra_fd is readable, 3 when no
 * thread runs and nothing is pending, 4 when a status collected here gave a peer engine an event to
 * report (several processes in non-stop: the caller asks each one), or -errno.  pt_request_stop
 * stops every running thread, each reported on its own. */
static int wait_one_masked(pt_engine *e, int timeout_ms, int extra_fd)
{
    uint64_t deadline = timeout_ms >= 0 ? pt_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    e->world_stopped = 0;
    for (;;) {
        if (take_stop_request(e)) /* clears the flag too, or a later all-stop wait would act on it */
            for (int32_t i = 0; i < e->nthreads; i++)
                stop_thread_masked(e, e->threads[i]->tid);
        drain_from(e, 0, 0, 0); /* non-stop: nothing is held */
        pt_prune(e);
        if (choose_report(e, 0))
            return 1;
        if (e->peer && e->peer_event)
            return 4;
        if (e->nrunning <= 0 && !exit_status_due(e))
            return 3;
        struct pollfd p[3];
        int n = sleep_until_ready(e, p, extra_fd, timeout_ms, deadline);
        if (n == -ETIME)
            return 0;
        if (n <= 0) {
            if (n < 0)
                return n;
            continue;
        }
        if (extra_fd >= 0 && p[2].revents) { /* GDB first, unless an event is ready: a stream of
                                              * unreported stops (clones, echoes) must not starve it */
            drain_from(e, 0, 0, 0);
            pt_prune(e);
            return choose_report(e, 0) ? 1 : e->peer && e->peer_event ? 4 : 2;
        }
    }
}

int pt_resume_some(pt_engine *e)
{
    WITH_SIGCHLD_BLOCKED(resume_some_masked(e));
}

int pt_wait_one(pt_engine *e, int timeout_ms, int extra_fd)
{
    WITH_SIGCHLD_BLOCKED(wait_one_masked(e, timeout_ms, extra_fd));
}

int pt_stop_thread(pt_engine *e, int32_t tid)
{
    return stop_thread_masked(e, tid);
}

/* ------------------------------------------------------------------------------------------------ */
/* several processes in one session (docs/design-notes.md, "Several processes")                      */

/* Put `peer` (an engine alone) into e's ring: from now on each routes the other's statuses. */
int pt_link_peer(pt_engine *e, pt_engine *peer)
{
    if (e == peer || peer->peer)
        return -EINVAL;
    if (!e->peer)
        e->peer = e;
    peer->peer = e->peer;
    e->peer = peer;
    return 0;
}

/* Take e out of its ring (an engine that is freed, or a process that left the session). */
void pt_unlink_peer(pt_engine *e)
{
    if (!e->peer)
        return;
    pt_engine *prev = e->peer;
    while (prev->peer != e)
        prev = prev->peer;
    prev->peer = e->peer;
    if (prev->peer == prev) {
        prev->peer = NULL; /* the last one left is alone again: no peer's event can be pending */
        prev->peer_event = 0;
    }
    for (int i = 0; i < e->n_orphans; i++) /* statuses e kept for the others are theirs */
        remember_orphan(prev, e->orphan_tid[i], e->orphan_status[i]);
    e->n_orphans = 0;
    e->peer = NULL;
}

/* All-stop over several processes: another engine reports, so this one's world stops too.  Events
 * caught while stopping stay pending (reported on a later resume, as any held thread's).  Returns 1
 * when this engine has an event to report (e->reported set; NULL when the process ended). */
static int hold_masked(pt_engine *e)
{
    if (take_stop_request(e))
        e->stop_requested = 1;
    if (!e->exited && !e->world_stopped)
        stop_all_masked(e);
    pt_prune(e);
    e->world_stopped = 1;
    if (e->stop_requested && !e->exited && report_interrupt(e)) {
        e->stop_requested = 0; /* a Ctrl-C for this process while another one reported: kept as */
        return 1;              /* its event, as the SIGINT gdbserver sends waits in the kernel */
    }
    return choose_report(e, 1) || (!e->exited && choose_report(e, 0));
}

int pt_hold(pt_engine *e)
{
    WITH_SIGCHLD_BLOCKED(hold_masked(e));
}
