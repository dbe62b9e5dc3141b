/* ptcore_nonstop.c - non-stop mode (GDB manual, "Remote Non-Stop"): threads stop and resume one by one. */
#include "ptcore_internal.h"

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
int stopped_on_request(pt_engine *e, pt_thread *t)
{
    t->want_stop = 0;
    if (at_interrupt_stop(e, t))
        return 1;
    struct user_regs_struct r;
    uint64_t pc = pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) == 0 ? r.rip : 0;
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
    if (t->phase == PT_PHASE_NEW) /* its first stop is on its way; on_event_stop reports it */
        return 1;
    if (pt_ptrace(e, PTRACE_INTERRUPT, tid, 0, 0) < 0) { /* ESRCH: exiting; its exit status follows */
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
    if (t->state != PT_STOPPED || t->action == PT_ACT_NONE || has_event(t) || t->phase == PT_PHASE_EXITING ||
        !e->nbps || e->vfork_parent_tid || !t->on_breakpoint)
        return 0;
    struct user_regs_struct r;
    return pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) == 0 && bp_at(e, r.rip);
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
        pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r);
        int32_t tid = t->tid;
        int got = step_over(e, t, r.rip);
        t = find(e, tid);
        if (!got && t && t->state == PT_STOPPED && t->phase != PT_PHASE_EXITING && t->action != PT_ACT_CONT) {
            pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r);
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

/* One look at a process in non-stop: a stop request stops every running thread (each reported on
 * its own), every status the kernel has ready is taken (nothing is held), and the event to report
 * chosen.  Returns 1 when there is one (e->reported, or the process ended). */
int nonstop_look(pt_engine *e)
{
    if (take_stop_request(e)) /* clears the flag too, or a later all-stop wait would act on it */
        for (int32_t i = 0; i < e->nthreads; i++)
            stop_thread_masked(e, e->threads[i]->tid);
    e->world_stopped = 0;
    drain_from(e, 0, 0, 0); /* non-stop: nothing is held */
    pt_prune(e);
    return choose_report(e, 0);
}

/* Wait for one thread's event with the others left as they are.  Returns 1 when an event is to be
 * reported (e->reported, or the process ended), 0 on timeout, 2 when extra_fd is readable, -ECHILD
 * when no thread runs and nothing is pending, or -errno.  pt_request_stop stops every running
 * thread, each reported on its own.  Several processes wait in ptcore_waiter.c instead. */
int wait_one_masked(pt_engine *e, int timeout_ms, int extra_fd)
{
    uint64_t deadline = timeout_ms >= 0 ? pt_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    for (;;) {
        if (nonstop_look(e))
            return 1;
        if (e->nrunning <= 0 && !status_can_come(e))
            return -ECHILD;
        struct pollfd p[3];
        int n = sleep_until_ready(&e, 1, p, extra_fd, timeout_ms, deadline);
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
            return choose_report(e, 0) ? 1 : 2;
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
