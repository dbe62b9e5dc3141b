/* ptcore_agent.c - breakpoints nobody hears of: hits judged in the engine (false conditions, agent
 * dprintf, csrc/agenthit.c) and passed in the wait loop (docs/design-notes.md, "Conditions and dprintf
 * in the engine").
 */
#include "ptcore_internal.h"
#include "agenthit.h"

/* A thread at an int3 of ours, pc rewound.  A breakpoint with target-side conditions or commands is
 * judged here (agenthit.c), for a thread that continues (a step is GDB's business) and an engine
 * alone in its group (with others the session judges it, as before).  The verdict goes with a reported hit in
 * ev_data.  A hit nobody is to hear of is passed: the thread moves past the instruction by emulation
 * and runs on at once; when it must be stepped, it waits for the end of the drain (pass_breakpoints).
 * While the world stops or is stopped it just stays stopped, on the breakpoint, like any thread
 * caught without an event: the next resume steps it over. */
int breakpoint_hit(pt_engine *e, pt_thread *t, const struct user_regs_struct *r)
{
    t->on_breakpoint = 1;
    t->bp_pc = r->rip;
    int verdict = e->agent && pt_group_size(e) == 1 && t->action == PT_ACT_CONT && t->phase != PT_PHASE_EXITING
                      ? pt_agent_judge(e, r, r->rip) : PT_JUDGE_NONE;
    if (verdict != PT_JUDGE_PASS)
        return record(t, PT_EV_BREAKPOINT, SIGTRAP, r->rip, (uint64_t)verdict);
    pt_agent_note_pass(e);
    /* Never resumed unmoved (it would hit again at once): held where the world is, reported as the
     * stop GDB asked for (non-stop vCont;t), or moved past the instruction first. */
    if (e->stopping || e->world_stopped || (t->want_stop && t->interrupt_pending) || emulate_over(e, t, r->rip))
        return keep_or_resume(e, t);
    if (pt_emulate_load(e, t->tid, r)) {
        t->on_breakpoint = 0;
        e->n_emulated++;
        return keep_or_resume(e, t);
    }
    t->pass_due = 1;
    e->agent_due++;
    return 0;
}

/* Whether a thread was left running, so that the stop of pass_breakpoints must run it again: running,
 * or resumed and found gone under us (PT_EXITING in its live phase: exit_group took it out of a stop,
 * ESRCH).  Such a thread still stops once, at PTRACE_EVENT_EXIT, and that stop catches it there;
 * not run again it held its process's exit for ever (gdb.threads/process-dies-while-handling-bp.exp). */
static int ran_on(const pt_thread *t)
{
    return t->state == PT_RUNNING || (t->state == PT_EXITING && t->phase != PT_PHASE_EXITING);
}

/* The end of a drain in which threads were left at breakpoints to pass (pass_due == 1).  Each is
 * stepped over its breakpoint exactly as a step-over at a resume does (step_over): the int3 lifted,
 * so every other thread of the process is held stopped meanwhile, or one could run past the lifted
 * breakpoint unseen.  Only the threads that ran are stopped (marked 2) and only they run again, with
 * their own actions; a thread GDB holds stays as it was.  An event found first, or caught by the stop,
 * with `hold` (all-stop): the world stays stopped for its report, and the threads still to pass are
 * stepped over by the resume after it.  Without `hold` (non-stop) such events stay pending on their
 * threads and the rest run.  Returns 1 when an event is to be reported. */
int pass_breakpoints(pt_engine *e, int hold, int found)
{
    e->agent_due = 0;
    int32_t born = e->nthreads;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        t->pass_due = found && hold ? 0 : t->pass_due ? 1 : ran_on(t) ? 2 : 0;
    }
    if (found && hold)
        return found; /* the caller stops the world; its resume steps the threads over */
    if (e->nrunning > 0)
        found |= stop_all_masked(e);
    for (int32_t i = 0; i < e->nthreads && !(found && hold); i++) {
        pt_thread *t = e->threads[i];
        if (!t->pass_due || t->state != PT_STOPPED || has_event(t) || !t->on_breakpoint || t->phase == PT_PHASE_EXITING ||
            !bp_at(e, t->bp_pc) || emulate_over(e, t, t->bp_pc))
            continue;
        found |= step_over(e, t, t->bp_pc);
    }
    if (e->nrunning > 0 && !(found && hold)) { /* clone children born during a step: held too */
        e->stopping = 1;
        wait_all_stopped(e);
        e->stopping = 0;
    }
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        int run = (t->pass_due || i >= born) && !(found && hold);
        t->pass_due = 0;
        if (run && t->state == PT_STOPPED && !has_event(t) && !t->resume_due) {
            int sig = t->deliver_sig;
            t->deliver_sig = 0;
            resume_thread(e, t, sig);
        }
    }
    if (found && hold) {
        e->world_stopped = 1;
        return 1;
    }
    e->world_stopped = 0;
    return found;
}
