/* ptcore_setters.c - every change Python makes to the engine: its records are read directly through
 * cffi but written only here, so the invariants of ptcore_internal.h hold (a state changes through
 * set_state, which keeps the running count; an action or signal is checked before it is kept). */
#include "ptcore_internal.h"

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

/* One thread's action for the next resume: PT_ACT_NONE keeps it stopped (its signal left as it is);
 * otherwise the signal to deliver with it (0: none) and, for PT_ACT_RANGE, the range to step in. */
int pt_set_action(pt_thread *t, int32_t action, int32_t sig, uint64_t range_start, uint64_t range_end)
{
    if (action < PT_ACT_NONE || action > PT_ACT_RANGE || sig < 0 || sig > 64)
        return -EINVAL;
    t->action = action;
    if (action == PT_ACT_NONE)
        return 0;
    if (action == PT_ACT_RANGE) {
        t->range_start = range_start;
        t->range_end = range_end;
    }
    t->action_sig = sig;
    return 0;
}

/* The signal tid's next resume delivers (a signal GDB was told of and passes on).  -ESRCH: unknown. */
int pt_set_action_signal(pt_engine *e, int32_t tid, int32_t sig)
{
    pt_thread *t = find(e, tid);
    if (!t)
        return -ESRCH;
    if (sig < 0 || sig > 64)
        return -EINVAL;
    t->action_sig = sig;
    return 0;
}

/* A signal for tid to receive when it is let go, unless one is due already (a signal collected while
 * stopping).  Returns 1 when kept, 0 when tid had one, -ESRCH when tid is unknown. */
int pt_set_deliver_signal(pt_engine *e, int32_t tid, int32_t sig)
{
    pt_thread *t = find(e, tid);
    if (!t)
        return -ESRCH;
    if (sig <= 0 || sig > 64)
        return -EINVAL;
    if (t->deliver_sig)
        return 0;
    t->deliver_sig = sig;
    return 1;
}

/* Non-stop: GDB resumes a running thread it had asked to stop; the stop it asked for is withdrawn (its
 * interrupt stop is then swallowed, as gdbserver does). */
int pt_withdraw_thread_stop(pt_engine *e, int32_t tid)
{
    pt_thread *t = find(e, tid);
    if (!t)
        return -ESRCH;
    t->want_stop = 0;
    return 0;
}

/* Make tid's pending event the one reported (a signal caught while attaching, reported at once). */
int pt_select_report(pt_engine *e, int32_t tid)
{
    pt_thread *t = find(e, tid);
    if (!t || !has_event(t))
        return t ? -EINVAL : -ESRCH;
    e->reported = t;
    e->report_tid = tid;
    return 0;
}

/* The reported event of t is taken by the caller: it is no longer pending.  A thread whose exit was the
 * event is dead: its record becomes PT_GONE (stopped, so no running count moves).  Returns the kind
 * of the event taken (the rest of it stays readable in t until the next resume). */
int pt_take_event(pt_engine *e, pt_thread *t)
{
    int kind = t->ev_kind;
    t->ev_kind = PT_EV_NONE;
    if (kind == PT_EV_THREAD_EXITED)
        set_state(e, t, PT_GONE);
    return kind;
}

/* Signals delivered without a stop (GDB's QPassSignals): bit sig-1. */
int pt_set_pass_signals(pt_engine *e, uint64_t mask)
{
    e->pass_signals = mask;
    return 0;
}

/* Whether a resume batch of many threads may raise the tracer thread to SCHED_FIFO (boost_begin):
 * the caller's policy (ptstub/linux/realtime.py) says where that is allowed and safe. */
int pt_set_realtime(pt_engine *e, int32_t allowed)
{
    e->realtime = allowed != 0;
    return 0;
}

int pt_set_options(pt_engine *e, int options)
{
    e->options = options;
    return 0;
}
