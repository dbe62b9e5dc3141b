/* ptcore_lifecycle.c - launch, attach, detach and kill: a process enters and leaves the engine here. */
#include "ptcore_internal.h"
#include "agenthit.h"

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
 * it runs on to the PTRACE_EVENT_EXEC stop.  Returns 0 with e->pid set (its memory open) and the
 * child stopped at the exec event, or -errno (stage-specific errors are reported through the pipe). */
int pt_launch(pt_engine *e, const char *path, char *const argv[], char *const envp[], const char *cwd,
              int flags, int stdin_fd, int stdout_fd, int stderr_fd)
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
    if (pt_ptrace(e, PTRACE_SEIZE, pid, 0, (void *)(uintptr_t)(SEIZE_OPTIONS | PTRACE_O_EXITKILL)) < 0) {
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
        pt_ptrace(e, PTRACE_CONT, pid, 0, (void *)(uintptr_t)deliver);
    }
    close(errpipe[0]);
    e->pid = pid;
    reopen_memfd(e);
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
    engine_born();
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
    if (e->wakefd < 0 || group_create(e) < 0) {
        pt_engine_free(e);
        return NULL;
    }
    return e;
}

void pt_engine_free(pt_engine *e)
{
    if (!e)
        return;
    group_leave(e);
    for (int32_t i = 0; i < e->nthreads; i++)
        free(e->threads[i]);
    free(e->threads);
    free(e->hash);
    free(e->bps);
    free(e->due);
    pt_agent_free(e);
    if (e->memfd >= 0)
        close(e->memfd);
    if (e->wakefd >= 0)
        close(e->wakefd);
    if (e->timer_state)
        timer_delete((timer_t)e->wake_timer);
    pt_ptrace_log_disable(e);
    free(e);
    engine_gone();
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
int attach_all_masked(pt_engine *e)
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
            if (pt_ptrace(e, PTRACE_SEIZE, tid, 0, (void *)(uintptr_t)SEIZE_OPTIONS) < 0) {
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
            if (pt_ptrace(e, PTRACE_INTERRUPT, tid, 0, 0) == 0)
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
        if (pt_ptrace(e, PTRACE_CONT, t->tid, 0, 0) < 0)
            return;
        int st;
        if (waitpid(t->tid, &st, __WALL) < 0 || !WIFSTOPPED(st))
            return;
        siginfo_t si;
        if (((unsigned)st >> 16) == 0 && WSTOPSIG(st) == SIGTRAP &&
            pt_ptrace(e, PTRACE_GETSIGINFO, t->tid, 0, &si) == 0 && si.si_code == t->stale_trap)
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
            pt_ptrace(e, PTRACE_CONT, child, 0, 0);
        } else {
            if (t->ev_kind == PT_EV_FORK)
                remove_breakpoints_from_child(e, child);
            pt_ptrace(e, PTRACE_DETACH, child, 0, 0);
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
        int got = take_early(e, tid, &st) || waitpid(tid, &st, __WALL | WNOHANG) == tid;
        if (got && (WIFEXITED(st) || WIFSIGNALED(st)))
            return 1;
        if ((got && pt_ptrace(e, PTRACE_DETACH, tid, 0, 0) == 0) || !traced_by_us(tid))
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
        if (pt_ptrace(e, PTRACE_DETACH, tid, 0, 0) < 0)
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
            if (pt_ptrace(e, PTRACE_DETACH, t->tid, 0, (void *)(uintptr_t)sig) == 0)
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
    e->exited = 1; /* for the caller the process is gone: nothing more comes from it */
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
            pt_ptrace(e, PTRACE_CONT, e->threads[i]->tid, 0, 0);
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
            struct pollfd p = {chld_wake_fd(), POLLIN, 0};
            if (sleep_on(e, &p, 1, 50) > 0)
                drain_fd(chld_wake_fd());
            continue;
        }
        pt_thread *t = find(e, r);
        if (WIFEXITED(st) || WIFSIGNALED(st))
            on_exit_status(e, t, r, st);
        else if (t || r == e->pid || tgid_of(r) == e->pid)
            pt_ptrace(e, PTRACE_CONT, r, 0, 0); /* an exit stop, or a clone child's first stop: let it die */
        else
            hand_over_or_keep(e, r, st);
    }
    restore_mask(&old);
    e->exited = 1;
    return 0;
}
