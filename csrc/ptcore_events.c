/* ptcore_events.c - wait-status handling: each status becomes a thread state change and, when GDB must hear of it,
 * a pending event (clone, fork, exec, int3, hardware trap, signal, syscall, exit). */
#include "ptcore_internal.h"
#include "agenthit.h"

int on_exit_status(pt_engine *e, pt_thread *t, int tid, int status)
{
    if (tid == e->pid) { /* the leader is reaped last: the whole process is gone */
        e->exited = 1;
        e->exit_status = status;
        for (int32_t i = 0; i < e->nthreads; i++)
            set_state(e, e->threads[i], PT_GONE);
        return 1;
    }
    if (!t) {
        hand_over_or_keep(e, tid, status);
        return 0;
    }
    if ((e->options & PT_OPT_THREAD_EXITS) && t->state != PT_GONE) {
        /* GDB asked to hear of thread exits (QThreadEvents, while it stops every thread in non-stop:
         * it waits for each thread it asked to stop, and this one never will).  Kept in the table,
         * stopped, until the event is taken (a thread with an event is never resumed). */
        set_state(e, t, PT_STOPPED);
        t->phase = PT_PHASE_EXITING;
        return record(t, PT_EV_THREAD_EXITED, 0, 0, (uint64_t)(unsigned)status);
    }
    set_state(e, t, PT_GONE);
    t->ev_kind = PT_EV_NONE;
    return 0;
}


int on_event_stop(pt_engine *e, pt_thread *t, int sig)
{
    if (t->phase == PT_PHASE_NEW) { /* a seized clone child's first stop (ptrace(2): no SIGSTOP under SEIZE) */
        t->phase = PT_PHASE_LIVE;
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
void adopt_clone(pt_engine *e, int32_t newtid)
{
    if (find(e, newtid))
        return;
    pt_thread *n = add_thread(e, newtid, PT_RUNNING);
    if (!n)
        return;
    n->phase = PT_PHASE_NEW;
    int st;
    if (take_early(e, newtid, &st))
        on_status(e, newtid, st);
}

static int on_clone(pt_engine *e, pt_thread *t)
{
    unsigned long newtid = 0;
    int32_t parent = t->tid;
    if (pt_ptrace(e, PTRACE_GETEVENTMSG, parent, 0, &newtid) == 0)
        adopt_clone(e, (int32_t)newtid);
    return keep_or_resume(e, t);
}

/* A fork child has a copy of the parent's memory, int3s included: put the original bytes back. */
void remove_breakpoints_from_child(pt_engine *e, int child)
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
    if (!take_early(e, child, &st))
        while (waitpid(child, &st, __WALL) < 0 && errno == EINTR)
            ;
    if (is_vfork) {
        write_all_breakpoints(e, e->memfd, 1);
        e->vfork_parent_tid = parent->tid;
    } else {
        remove_breakpoints_from_child(e, child);
    }
    pt_ptrace(e, PTRACE_DETACH, child, 0, 0);
}

static int on_fork(pt_engine *e, pt_thread *t, int event)
{
    unsigned long child = 0;
    pt_ptrace(e, PTRACE_GETEVENTMSG, t->tid, 0, &child);
    int is_vfork = event == PTRACE_EVENT_VFORK;
    if (e->options & PT_OPT_FORK_EVENTS) {
        int st;
        if (!take_early(e, (int)child, &st))
            while (waitpid((int)child, &st, __WALL) < 0 && errno == EINTR)
                ;
        struct user_regs_struct r;
        pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r);
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
        pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r);
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

void reopen_memfd(pt_engine *e)
{
    int fd = open_process_mem(e->pid);
    if (fd >= 0) {
        if (e->memfd >= 0)
            close(e->memfd);
        e->memfd = fd;
    }
}

/* A thread of a held process at PTRACE_EVENT_EXIT.  Killed with SIGKILL (from outside: a held thread
 * runs nothing, and any other fatal signal stops it at its delivery first), it is let go at once:
 * it can never stop for GDB again, and held it keeps its process from becoming a zombie, so a parent
 * waiting for it in another process of the group, still running, waited for ever.  Its exit status
 * follows and reports the end (the message of this event is that status, ptrace(2)).  Any other
 * exit stays held, as every stop of a held process does. */
static int on_exit_while_held(pt_engine *e, pt_thread *t)
{
    unsigned long status = 0;
    if (pt_ptrace(e, PTRACE_GETEVENTMSG, t->tid, 0, &status) < 0 || !WIFSIGNALED((int)status) ||
        WTERMSIG((int)status) != SIGKILL)
        return keep_or_resume(e, t);
    t->deliver_sig = 0;
    resume_thread(e, t, 0); /* past PTRACE_EVENT_EXIT: a plain PTRACE_CONT, the thread PT_EXITING */
    return 0;
}

/* execve replaced the image; every other thread is gone and the execing thread now has the leader's
 * tid (ptrace(2), "execve(2) under ptrace").  Old breakpoints and debug registers went with the mm. */
static int on_exec(pt_engine *e, pt_thread *t)
{
    unsigned long former = 0;
    pt_ptrace(e, PTRACE_GETEVENTMSG, t->tid, 0, &former);
    pt_thread *old = find(e, (int32_t)former);
    int pending = old ? old->interrupt_pending : t->interrupt_pending;
    for (int32_t i = 0; i < e->nthreads; i++)
        if (e->threads[i] != t)
            set_state(e, e->threads[i], PT_GONE);
    t->interrupt_pending = pending;
    t->phase = PT_PHASE_LIVE;
    t->stale_trap = 0;
    e->nbps = 0;
    pt_agent_forget_all(e);
    e->vfork_parent_tid = 0;
    memset(e->dr, 0, sizeof e->dr);
    e->dr7 = 0;
    reopen_memfd(e);
    struct user_regs_struct r;
    pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r);
    return record(t, PT_EV_EXEC, SIGTRAP, r.rip, former);
}

/* DR6 when a single-step trap also hit a hardware breakpoint or watchpoint (B0-B3 set), else 0.
 * The kernel reports such a trap as TRAP_TRACE, not TRAP_HWBKPT (x86 get_si_code() tests BS
 * first), so a step that writes a watched variable looks like a plain step unless DR6 is read. */
uint64_t step_hit_debugreg(pt_engine *e, int32_t tid)
{
    uint64_t dr6 = 0;
    if (!e->dr7 || pt_get_dr6(e, tid, &dr6) < 0 || !(dr6 & 0xf))
        return 0;
    pt_ptrace(e, PTRACE_POKEUSER, tid, (void *)DR_OFFSET(6), 0);
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
    if (pt_ptrace(e, PTRACE_GETSIGINFO, t->tid, 0, &si) < 0 || pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return keep_or_resume(e, t); /* vanished (ESRCH): its exit status follows */
    if (t->stale_trap && si.si_code == t->stale_trap) { /* a trap we already counted at an interrupt stop */
        t->stale_trap = 0;
        return keep_or_resume(e, t);
    }
    if (si.si_code == SI_KERNEL && e->nbps && bp_at(e, r.rip - 1)) {
        r.rip -= 1; /* int3 leaves pc one past the breakpoint: rewind at once */
        pt_ptrace(e, PTRACE_SETREGS, t->tid, 0, &r);
        return breakpoint_hit(e, t, &r);
    }
    if (si.si_code == SI_KERNEL && removed_lately(e, r.rip - 1)) {
        /* An int3 of ours, hit just before it was removed (in non-stop threads run while GDB edits
         * breakpoints): the original instruction is back, so rewind to it and go on with no hit to
         * report, as gdbserver discards a pending breakpoint stop whose breakpoint is gone. */
        r.rip -= 1;
        pt_ptrace(e, PTRACE_SETREGS, t->tid, 0, &r);
        e->n_stale_stops++;
        return keep_or_resume(e, t);
    }
    int stepping = t->action == PT_ACT_STEP || t->action == PT_ACT_RANGE;
    if (si.si_code == TRAP_HWBKPT) {
        uint64_t dr6 = 0;
        pt_get_dr6(e, t->tid, &dr6);
        pt_ptrace(e, PTRACE_POKEUSER, t->tid, (void *)DR_OFFSET(6), 0);
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
static int sent_by_us(pt_engine *e, pt_thread *t)
{
    siginfo_t si;
    return pt_ptrace(e, PTRACE_GETSIGINFO, t->tid, 0, &si) == 0 && si.si_code == SI_TKILL &&
           si.si_pid == getpid();
}

int on_signal(pt_engine *e, pt_thread *t, int sig)
{
    uint64_t bit = sig > 0 && sig <= 64 ? 1ull << (sig - 1) : 0;
    if ((t->inject_mask & bit) && sent_by_us(e, t)) { /* GDB's signal, on its way in: deliver it */
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
    uint64_t pc = pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) == 0 ? r.rip : 0;
    return record(t, PT_EV_SIGNAL, sig, pc, 0);
}

static int on_syscall_stop(pt_engine *e, pt_thread *t)
{
    struct user_regs_struct r;
    if (pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return keep_or_resume(e, t);
    /* Entry or exit from the kernel itself (ptrace(2), PTRACE_GET_SYSCALL_INFO, Linux 5.3): a
     * toggle goes wrong when catching starts inside a call (after a vfork event) or a thread was
     * stepped or continued through one. The toggle stays as the fallback for older kernels. */
    uint8_t info[88] = {0}; /* struct ptrace_syscall_info; op is its first byte */
    int is_exit = t->in_syscall;
    if (pt_ptrace(e, PTRACE_GET_SYSCALL_INFO, t->tid, (void *)sizeof info, info) > 0 &&
        (info[0] == 1 || info[0] == 2))
        is_exit = info[0] == 2; /* PTRACE_SYSCALL_INFO_ENTRY 1, _EXIT 2 */
    t->in_syscall = !is_exit;
    return record(t, PT_EV_SYSCALL, is_exit, r.rip, r.orig_rax);
}

/* A stop still to report when its thread reaches PTRACE_EVENT_EXIT: it was held in that stop, and only
 * a SIGKILL (exit_group in another thread, a kill from outside) takes a held thread out of one.  It is
 * at no breakpoint, signal or step now and will never run again, so the stop is void, as gdbserver
 * drops the pending status of an lwp that died (GDB hears the process's end instead).  Fork and exec
 * events stay: a traced child or a new image exists whatever became of the thread. */
static void drop_void_event(pt_thread *t)
{
    switch (t->ev_kind) {
    case PT_EV_BREAKPOINT:
    case PT_EV_STEP:
    case PT_EV_SIGNAL:
    case PT_EV_INTERRUPT:
    case PT_EV_HWTRAP:
    case PT_EV_SYSCALL:
        t->ev_kind = PT_EV_NONE;
        break;
    default:
        break;
    }
}

/* Classify one wait status.  Returns 1 when a reportable event was recorded on a thread (or the
 * process ended), 0 otherwise.  The thread is resumed again here when nothing is to be reported and
 * the world is running. */
int on_status(pt_engine *e, int tid, int status)
{
    pt_thread *t = find(e, tid);
    if (WIFEXITED(status) || WIFSIGNALED(status))
        return on_exit_status(e, t, tid, status);
    if (!WIFSTOPPED(status))
        return 0;
    if (!t) {
        /* A tid we do not know: a clone or fork child whose first stop came before its parent's
         * PTRACE_EVENT_CLONE/FORK (wait(2) looks at the newest tracee first, so under thread churn
         * that is the usual order), or another member's thread.  Kept early, the child stays stopped until its
         * parent's event claims it (adopt_clone, on_fork), as gdbserver keeps such stops
         * (stopped_pids): that tells a thread from a fork child without reading /proc/TID/status,
         * which cost a kernel text rendering per new thread, and a parked child cannot run and end
         * before its parent's event is seen, so the tid that event names is always its own. */
        hand_over_or_keep(e, tid, status);
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
        t->phase = PT_PHASE_EXITING;
        drop_void_event(t);
        return e->stopping || e->world_stopped ? on_exit_while_held(e, t) : keep_or_resume(e, t);
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
int drain_from(pt_engine *e, int hold, int tid, int status)
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
    if (e->agent_due)
        found = pass_breakpoints(e, hold, found);
    return found;
}

int drain(pt_engine *e)
{
    return drain_from(e, 1, 0, 0);
}
