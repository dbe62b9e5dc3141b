/* ptcore_wake.c - waking the tracer: the SIGCHLD eventfd, the wake signal and its timer, sleeping in
 * waitpid() or ppoll(), and the signal mask every public waiting call runs under. */
#include "ptcore_internal.h"

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

uint64_t next_random(pt_engine *e)
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

int install_sigchld_wakeup(void)
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

void drain_fd(int fd)
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

static void on_wake(int sig)
{
    (void)sig; /* its only job is to make the interrupted waitpid() return EINTR */
}

void install_wake_signal(void)
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

pid_t self_tid(void)
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

void disarm_wake_timer(pt_engine *e)
{
    if (e->timer_state != 2)
        return;
    struct itimerspec off;
    memset(&off, 0, sizeof off);
    timer_settime((timer_t)e->wake_timer, 0, &off, NULL);
    e->timer_state = 1;
}

/* Take a stop request made by pt_request_stop (and reset its eventfd, which ppoll watches). */
int take_stop_request(pt_engine *e)
{
    if (!__atomic_exchange_n(&e->stop_flag, 0, __ATOMIC_SEQ_CST))
        return 0;
    drain_fd(e->wakefd);
    return 1;
}

/* Sleep in waitpid() until a status comes (handled here; *found gets its result) or the wake
 * signal (a tick, a deadline, a stop request).  Returns 1 after a status, 0 after a wake, or
 * -ENOSYS when blocking waits are not available (the caller sleeps in ppoll instead). */
int sleep_in_waitpid(pt_engine *e, uint64_t deadline_ns, int *found)
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
 * a SIGCHLD pending at that moment ends the sleep at once (EINTR).
 *
 * The thread that makes those calls keeps SIGCHLD blocked from its first call on (hold_sigchld)
 * rather than blocking and restoring it around each: with GDB in the loop that was ~8
 * rt_sigprocmask calls per breakpoint stop, and each restore ran the handler for the SIGCHLDs of the
 * stop just collected (a signal frame, a write and an rt_sigreturn, up to 3 per stop) only to make
 * the next sleep end at once for nothing.  Now those SIGCHLDs stay pending (one bit: signal(7)) until
 * the next sleep, which takes one of them.  Nothing else in the process waits for SIGCHLD's eventfd,
 * so no wake-up is lost meanwhile: every sleep looks at waitpid first or sleeps with the signal
 * pending.  A thread that does not hold it (another engine's tracer, the program's own threads)
 * still runs the handler, which writes the eventfd every sleep watches.  What the tracer starts
 * inherits the mask: pt_launch empties it in the child, and the thread gets its own mask back when
 * the last engine of the process is freed (engine_gone), so a program that uses the engine and then
 * spawns children of its own (subprocess) does not pass a blocked SIGCHLD on to them. */
_Static_assert(sizeof(sigset_t) <= sizeof(((pt_engine *)0)->sleep_mask), "sigset_t fits sleep_mask");

static __thread int chld_held;          /* this thread keeps SIGCHLD blocked (hold_sigchld) */
static __thread sigset_t held_original; /* its mask before that */
static __thread sigset_t held_sleeping; /* the mask to sleep with: that one, less SIGCHLD and wake_sig */
static int live_engines;                /* engines of the process not freed yet (atomic) */

void hold_sigchld(pt_engine *e)
{
    if (__builtin_expect(!chld_held, 0)) {
        block_sigchld(&held_original);
        set_sleep_mask(e, &held_original);
        memcpy(&held_sleeping, e->sleep_mask, sizeof held_sleeping);
        chld_held = 1;
        return;
    }
    memcpy(e->sleep_mask, &held_sleeping, sizeof held_sleeping);
}

void engine_born(void)
{
    __atomic_add_fetch(&live_engines, 1, __ATOMIC_SEQ_CST);
}

/* The last engine is gone: the calling thread's mask as it was before its first waiting call. */
void engine_gone(void)
{
    if (__atomic_sub_fetch(&live_engines, 1, __ATOMIC_SEQ_CST) > 0 || !chld_held)
        return;
    chld_held = 0;
    restore_mask(&held_original);
}

int sleep_on(pt_engine *e, struct pollfd *fds, int nfds, int timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    int n = ppoll(fds, (nfds_t)nfds, tsp, (const sigset_t *)e->sleep_mask);
    if (n < 0 && errno == EINTR) {
        /* Most often the handler of a SIGCHLD left pending since the last stop ran here and wrote
         * the eventfd: reset it, or the next sleep ends at once for the same SIGCHLD.  Every caller
         * looks at waitpid before it sleeps again, so nothing the eventfd told is missed. */
        drain_fd(chld_wakefd);
        errno = EINTR;
    }
    return n;
}

/* The mask to sleep with: the caller's own, less SIGCHLD (computed once per public call). */
void set_sleep_mask(pt_engine *e, const sigset_t *callers)
{
    sigset_t during = *callers;
    sigdelset(&during, SIGCHLD);
    if (wake_sig)
        sigdelset(&during, wake_sig);
    memcpy(e->sleep_mask, &during, sizeof during);
}

void block_sigchld(sigset_t *old)
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

void restore_mask(const sigset_t *old)
{
    pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* The eventfd SIGCHLD makes readable (-1 before the first engine installs it). */
int chld_wake_fd(void)
{
    return chld_wakefd;
}

/* The signal that wakes a tracer asleep in waitpid (0: waits sleep in ppoll). */
int wake_signal(void)
{
    return wake_sig;
}
