/* ptcore_threads.c - the thread table (records, states, the running count), the /proc witnesses of a thread's
 * state, and resuming a thread (the signal it gets, deferred resumes during a drain). */
#include "ptcore_internal.h"

/* Read a small /proc file into buf (NUL-terminated); returns 0 or -errno. */
int read_proc_file(const char *path, char *buf, size_t size)
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

int tgid_of(int tid)
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
char state_letter(const char *stat_path)
{
    char buf[512];
    if (read_proc_file(stat_path, buf, sizeof buf) < 0)
        return 0;
    char *p = strrchr(buf, ')');
    return (p && p[1] && p[2]) ? p[2] : 0;
}

/* ... of /proc/PID/task/TID/stat. */
char task_state(int pid, int tid)
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
int has_deliverable_signal(int pid, int tid)
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
int queued_trap(pt_engine *e, int tid)
{
    struct __ptrace_peeksiginfo_args args = {.off = 0, .flags = 0, .nr = 16};
    siginfo_t queue[16];
    long n = pt_ptrace(e, PTRACE_PEEKSIGINFO, tid, &args, queue);
    if (n >= 0 && n < 16) {
        for (long i = 0; i < n; i++)
            if (queue[i].si_signo == SIGTRAP)
                return queue[i].si_code;
        return 0;
    }
    char buf[4096]; /* a longer queue, or no PEEKSIGINFO: the pending mask says it */
    if (read_task_status(e->pid, tid, buf) < 0)
        return 0;
    return (status_mask(buf, "\nSigPnd:") >> (SIGTRAP - 1)) & 1 ? -1 : 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* thread table                                                                                      */

void hash_rebuild(pt_engine *e)
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
pt_thread *find(pt_engine *e, int32_t tid)
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

void set_state(pt_engine *e, pt_thread *t, int32_t state)
{
    if (t->state == PT_RUNNING)
        e->nrunning--;
    if (state == PT_RUNNING)
        e->nrunning++;
    t->state = state;
}

pt_thread *add_thread(pt_engine *e, int32_t tid, int32_t state)
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

/* ------------------------------------------------------------------------------------------------ */
/* resuming                                                                                          */

int online_cpus(void)
{
    static int n;
    if (!n)
        n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* The tracer's priority for one resume batch (docs/design-notes.md, "Real-time resume window").
 * docs/kernel-facts.md §7: when busy threads outnumber CPUs, each PTRACE_CONT wakes a thread that can
 * preempt the tracer in the middle of resuming the rest.  One choice per batch, in this order:
 * - SCHED_FIFO priority 1 for the tracer thread (pid 0: the calling thread only, sched(7)) when the
 *   caller's policy allows it (pt_set_realtime) and the batch is long, more than FIFO_PER_CPU threads
 *   per CPU resumed: no SCHED_OTHER thread preempts it then (256 threads, 128 busy: ~8 ms instead of ~300).
 *   Not for shorter batches: threads that cannot run on the tracer's CPU until the batch ends reach
 *   their next event later, and a breakpoint loop of 8 to 128 threads lost 5-50% of its hits/s.
 * - else nice -15 when permitted (PTSTUB_NO_RENICE=1 turns it off), with more than two threads per
 *   CPU: a heavier tracer is preempted less often, and threads woken early still run meanwhile.
 *   With fewer, the heavier tracer makes the scheduler queue the threads it wakes on the other CPU,
 *   behind a busy one (1-thread hits/s fell by a fifth).
 * - else nothing.
 * `due`: the threads the batch resumes (a step of one thread over a breakpoint needs no boost).
 * Returns what boost_end undoes: BOOSTED_FIFO, the nice value to restore, or NOT_BOOSTED. */
#define FIFO_PER_CPU 64
int boost_begin(pt_engine *e, int32_t due)
{
    int cpus = online_cpus();
    if (due <= 2 * cpus)
        return NOT_BOOSTED;
    if (e->realtime && due > FIFO_PER_CPU * cpus &&
        sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){.sched_priority = 1}) == 0) {
        e->n_fifo_batches++;
        return BOOSTED_FIFO;
    }
    const char *no = getenv("PTSTUB_NO_RENICE");
    if (no && *no && *no != '0')
        return NOT_BOOSTED;
    id_t self = (id_t)self_tid();
    errno = 0;
    int current = getpriority(PRIO_PROCESS, self);
    if (errno != 0 || current <= -15 || setpriority(PRIO_PROCESS, self, -15) != 0)
        return NOT_BOOSTED;
    e->n_nice_batches++;
    return current;
}

/* Back to SCHED_OTHER (the only policy the caller's policy raises from) or to the saved nice value. */
void boost_end(int previous)
{
    if (previous == BOOSTED_FIFO)
        (void)sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){.sched_priority = 0});
    else if (previous != NOT_BOOSTED)
        (void)setpriority(PRIO_PROCESS, (id_t)self_tid(), previous);
}

/* A stop whose PTRACE_CONT can deliver a signal: neither a PTRACE_EVENT stop nor a syscall stop. */
int is_signal_delivery_stop(int event, int sig)
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
int take_resume_signal(pt_engine *e, pt_thread *t)
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
void keep_action_signals(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++)
        if (e->threads[i]->action_sig)
            e->threads[i]->deliver_sig = take_resume_signal(e, e->threads[i]);
}

int resume_thread(pt_engine *e, pt_thread *t, int sig)
{
    int req = PTRACE_CONT;
    if (t->action == PT_ACT_STEP || t->action == PT_ACT_RANGE)
        req = PTRACE_SINGLESTEP;
    else if (e->options & PT_OPT_CATCH_SYSCALLS)
        req = PTRACE_SYSCALL;
    if (t->phase == PT_PHASE_EXITING) /* past PTRACE_EVENT_EXIT: let it die; it is never waited for again */
        req = PTRACE_CONT;
    else if (sig && !t->at_signal_stop) {
        /* At an interrupt or event stop the kernel ignores the signal of PTRACE_CONT (ptrace(2),
         * "the data argument is ignored"): queue it instead. */
        queue_signal(e, t, sig);
        sig = 0;
    }
    if (pt_ptrace(e, req, t->tid, 0, (void *)(uintptr_t)sig) < 0) {
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
    set_state(e, t, t->phase == PT_PHASE_EXITING ? PT_EXITING : PT_RUNNING);
    return 0;
}


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
void settle_deferred(pt_engine *e, int hold)
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
int keep_or_resume(pt_engine *e, pt_thread *t)
{
    if (e->stopping || e->world_stopped)
        return 0;
    if (t->want_stop && t->interrupt_pending && t->phase != PT_PHASE_EXITING) {
        /* Non-stop: this stop (a clone event, a passed signal...) took our PTRACE_INTERRUPT with it:
         * any ptrace-stop clears the pending STOP trap (kernel ptrace_stop()), so no
         * PTRACE_EVENT_STOP follows if the interrupt came first.  This is the stop GDB asked for; if
         * the interrupt came after it, its PTRACE_EVENT_STOP follows the next resume as an echo. */
        t->interrupt_pending = 0;
        t->want_stop = 0;
        struct user_regs_struct r;
        uint64_t pc = pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) == 0 ? r.rip : 0;
        return record(t, PT_EV_INTERRUPT, 0, pc, 0);
    }
    if (e->collecting && defer_resume(e, t))
        return 0; /* resumed at the end of the drain (see drain()) */
    int sig = t->deliver_sig;
    t->deliver_sig = 0;
    resume_thread(e, t, sig);
    return 0;
}

int record(pt_thread *t, int kind, int sig, uint64_t pc, uint64_t data)
{
    t->want_stop = 0; /* non-stop: any reported stop answers a stop request */
    t->ev_kind = kind;
    t->ev_sig = sig;
    t->ev_pc = pc;
    t->ev_data = data;
    return 1;
}
