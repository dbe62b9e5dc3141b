/* ptcore_allstop.c - all-stop: stopping every thread, choosing the event to report, stepping over a breakpoint
 * with the others held, resuming and waiting, and the public calls that do these. */
#include "ptcore_internal.h"

static void interrupt_running(pt_engine *e);

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
int wait_all_stopped(pt_engine *e)
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
        struct pollfd p = {chld_wake_fd(), POLLIN, 0};
        int n = sleep_on(e, &p, 1, 100);
        if (n > 0) {
            drain_fd(chld_wake_fd());
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
        if (t->state != PT_RUNNING || t->phase == PT_PHASE_NEW)
            continue;
        if (pt_ptrace(e, PTRACE_INTERRUPT, t->tid, 0, 0) < 0) {
            /* ESRCH: the thread is exiting; its exit status (not a stop) will come */
            set_state(e, t, PT_EXITING);
            continue;
        }
        t->interrupt_pending = 1;
        e->n_interrupts++;
    }
}

int stop_all_masked(pt_engine *e)
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

int has_event(pt_thread *t)
{
    return t->ev_kind != PT_EV_NONE && t->state != PT_GONE;
}

/* Pick the event to report: the thread GDB last stepped if it has one, else a random one, so no
 * thread starves when many hit at once (gdbserver's select_event_lwp). */
int choose_report(pt_engine *e, int only_resumed)
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
int emulate_over(pt_engine *e, pt_thread *t, uint64_t pc)
{
    pt_breakpoint *b = bp_at(e, pc);
    if (!b || e->dr7 || e->vfork_parent_tid || t->action != PT_ACT_CONT || t->phase == PT_PHASE_EXITING)
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
    if (pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) < 0 || r.rip != pc || r.cs != 0x33)
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
    if (pt_ptrace(e, PTRACE_SETREGS, t->tid, 0, &r) < 0)
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
            o->phase = PT_PHASE_EXITING;
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

int step_over(pt_engine *e, pt_thread *t, uint64_t pc)
{
    pt_breakpoint *b = bp_at(e, pc);
    if (!b)
        return 0;
    int rc = poke_byte(e->memfd, pc, b->orig);
    if (rc < 0)
        return rc;
    int reported = 0, tid = t->tid;
    for (;;) {
        if (pt_ptrace(e, PTRACE_SINGLESTEP, tid, 0, 0) < 0) {
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
            if (pt_ptrace(e, PTRACE_GETEVENTMSG, tid, 0, &nt) == 0)
                adopt_clone(e, (int32_t)nt);
            continue;
        }
        if (event == PTRACE_EVENT_EXIT) {
            t->phase = PT_PHASE_EXITING;
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
            if (t->stale_trap && pt_ptrace(e, PTRACE_GETSIGINFO, tid, 0, &si) == 0 && si.si_code == t->stale_trap) {
                t->stale_trap = 0;
                continue;
            }
            uint64_t dr6 = step_hit_debugreg(e, tid);
            if (dr6) { /* the stepped instruction hit a watchpoint: report it, world held */
                struct user_regs_struct r2;
                pt_ptrace(e, PTRACE_GETREGS, tid, 0, &r2);
                reported = record(t, PT_EV_HWTRAP, SIGTRAP, r2.rip, dr6);
            }
            break; /* the step is done */
        }
        if (sig < 65 && ((e->pass_signals >> (sig - 1)) & 1)) {
            t->deliver_sig = sig; /* delivered with the real resume */
            continue;
        }
        struct user_regs_struct r2;
        pt_ptrace(e, PTRACE_GETREGS, tid, 0, &r2);
        reported = record(t, PT_EV_SIGNAL, sig, r2.rip, 0);
        break;
    }
    if (bp_at(e, pc) && e->vfork_parent_tid == 0)
        poke_byte(e->memfd, pc, INT3);
    return reported;
}

/* ------------------------------------------------------------------------------------------------ */
/* resume / wait                                                                                     */

/* No phantom hits: a hit whose breakpoint is gone when its thread is resumed reports nothing.
 * Only resumed threads are checked: GDB lifts the breakpoint under the thread it steps over it
 * (vCont;s:tid) while other threads' hits on it wait, and re-inserts it before continuing. */
static void drop_phantom_hits(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->ev_kind == PT_EV_BREAKPOINT && t->action != PT_ACT_NONE && !bp_at(e, t->ev_pc))
            t->ev_kind = PT_EV_NONE;
    }
}

/* Step every thread to resume that sits on a breakpoint over it, the others held.  Returns whether
 * any thread is to resume at all. */
static int step_resumed_over_breakpoints(pt_engine *e)
{
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
        if (t->phase == PT_PHASE_EXITING || !e->nbps || e->vfork_parent_tid || !t->on_breakpoint)
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
        if (!got && t && t->state == PT_STOPPED && t->phase != PT_PHASE_EXITING && t->action != PT_ACT_CONT) {
            pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r);
            if (t->action == PT_ACT_STEP || r.rip < t->range_start || r.rip >= t->range_end)
                record(t, PT_EV_STEP, SIGTRAP, r.rip, 0);
        }
    }
    return any;
}

/* Order matters on a small machine (docs/design-notes.md, "Resume order"): the reporter first if
 * it continues, so that it takes an idle CPU before a busy thread does, then the others from a
 * place that moves on each time: the thread resumed last gets a CPU last, and a fixed order
 * starved it (a main thread resumed last overslept a 1 s epoll_wait by half a second at 4,000
 * stops/s).  Threads that step go last: a step ends within microseconds and the world stops
 * again, so the threads that continue need the head start, or on a loaded machine they never run
 * during a `next` with scheduler-locking off (gdb.threads/schedlock.exp, "other threads ran"). */
/* How many threads a resume starts: the boost is for a batch of many (a step of one thread needs none). */
static int32_t resumes_due(pt_engine *e)
{
    int32_t n = 0;
    for (int32_t i = 0; i < e->nthreads; i++)
        n += e->threads[i]->state == PT_STOPPED && e->threads[i]->action != PT_ACT_NONE;
    return n;
}

static int resume_in_order(pt_engine *e)
{
    int32_t due = e->nthreads > 2 * online_cpus() ? resumes_due(e) : 0;
    int boost = boost_begin(e, due);
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
    e->resumed_ns = pt_now_ns(); /* before boost_end: the threads it woke may run first then */
    boost_end(boost);
    return rc;
}

int resume_masked(pt_engine *e)
{
    pt_prune(e);
    if (e->exited)
        return choose_report(e, 0);
    drop_phantom_hits(e);
    if (choose_report(e, 1)) { /* a resumed thread has an event waiting: report it, run nothing */
        keep_action_signals(e);
        return 1;
    }
    e->last_stepped_tid = 0;
    int any = step_resumed_over_breakpoints(e);
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
    if (!any && !status_can_come(e))
        return -EDEADLK; /* nothing to run */
    /* Nothing resumed but a thread on its way out (a PTRACE_INTERRUPT of the stop-all found it exiting,
     * ESRCH): its exit status comes without a resume, and the wait reports it (the exit of a process
     * that ended while another one's event was being reported). */
    e->world_stopped = 0;
    return resume_in_order(e);
}

int report_interrupt(pt_engine *e)
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
    uint64_t pc = pt_ptrace(e, PTRACE_GETREGS, pick->tid, 0, &r) == 0 ? r.rip : 0;
    record(pick, PT_EV_INTERRUPT, 0, pc, 0);
    e->report_tid = pick->tid;
    e->reported = pick;
    return 1;
}

/* Wait for the next reportable event with the world running.  Returns 1 when an event is to be
 * reported (every thread stopped, e->report_tid set), 0 on timeout, 2 when extra_fd is readable
 * (world still running), -ECHILD when no thread is running, or -errno. */
static int wait_masked(pt_engine *e, int timeout_ms, int extra_fd)
{
    return wait_resumed(e, timeout_ms, extra_fd, 0);
}

/* With no thread running, can a status still come?  Only from a thread on its way out; a zombie
 * leader (it exited while held threads live on) gives none until they are gone, as gdbserver says
 * with N (no-unwaited-for-left.exp).  A zombie leader with no thread left is the process ending: its
 * status is on the way (a vfork child, whose parent is not us, showed Z before waitpid had it). */
int exit_status_due(pt_engine *e)
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

/* Held threads knocked out of their stops under us.  A SIGKILL (exit_group in another thread, a kill
 * from outside) ends any ptrace-stop: the thread runs to its PTRACE_EVENT_EXIT stop, whose status the
 * engine never looks for while it believes the thread stopped.  A status already there is taken (the
 * thread stays held, at its exit stop); a thread no longer in a stop (ESRCH) is marked exiting, so its
 * status is waited for.  Looked at only when nothing else can report. */
static void find_knocked_out(pt_engine *e)
{
    for (int32_t i = 0; i < e->nthreads; i++) { /* on_status may append threads: re-read both each time */
        pt_thread *t = e->threads[i];
        if (t->state != PT_STOPPED || t->phase == PT_PHASE_EXITING)
            continue;
        int st;
        unsigned long msg;
        if (waitpid(t->tid, &st, __WALL | WNOHANG) == t->tid) {
            int held = e->world_stopped;
            e->world_stopped = 1;
            on_status(e, t->tid, st);
            e->world_stopped = held;
        } else if (pt_ptrace(e, PTRACE_GETEVENTMSG, t->tid, 0, &msg) < 0 && errno == ESRCH) {
            set_state(e, t, PT_EXITING);
        }
    }
}

/* Let go the threads held at PTRACE_EVENT_EXIT (phase EXITING, stopped, nothing to report).  They can
 * run no code again, and held they keep their process from ending.  Returns how many were let go. */
static int release_exit_stops(pt_engine *e)
{
    int released = 0;
    for (int32_t i = 0; i < e->nthreads; i++) {
        pt_thread *t = e->threads[i];
        if (t->phase != PT_PHASE_EXITING || t->state != PT_STOPPED || has_event(t))
            continue;
        t->deliver_sig = 0;
        resume_thread(e, t, 0); /* PTRACE_CONT, run state PT_EXITING: never waited for as a stop again */
        released++;
    }
    return released;
}

/* Whether a status can still come although no thread runs.  A thread on its way out gives one
 * (exit_status_due).  Otherwise held threads may have been killed under us: when GDB steps one thread
 * with the others held and the process meets exit_group, the stepper dies and every other thread
 * leaves its stop for its exit stop, so the answer was N (no resumed thread) and the process never
 * ended (gdb.threads/process-dies-while-handling-bp.exp, all-stop with GDB's conditions).  Such
 * threads are found and let go at their exit stops: gdbserver 13 never sets PTRACE_O_TRACEEXIT, so its
 * threads just die and the leader's exit status reports the end; so it does here. */
int status_can_come(pt_engine *e)
{
    if (exit_status_due(e))
        return 1;
    find_knocked_out(e);
    return release_exit_stops(e) > 0 || exit_status_due(e);
}

/* An event came: stop the world and choose what to report.  Returns 1 when a thread reports
 * (e->reported; an interrupt first when one was asked for), 0 when the event went away while stopping
 * (its thread died) and the world runs again, -ECHILD when nothing is then left to run, or -errno.
 * `in_group`: a waiter of several processes, which returns 0 at once, stopped, when another member
 * got an event meanwhile (the group then chooses among every member). */
int settle_event(pt_engine *e, int in_group)
{
    if (!e->exited)
        stop_all_masked(e);
    pt_prune(e);
    e->world_stopped = 1;
    if (in_group && group_handed_event(e))
        return 0;
    if (e->stop_requested && !e->exited && report_interrupt(e)) {
        e->stop_requested = 0; /* the hits stay pending for the next resumes */
        return 1;
    }
    e->stop_requested = 0;
    /* Only threads GDB resumed report (gdbserver's status_pending_p_callback skips the others): a
     * thread scheduler-locking holds keeps its pending hit for later. */
    if (choose_report(e, 1) || choose_report(e, 0))
        return 1;
    int rc = resume_masked(e); /* the event went away: run the world again */
    return rc == -EDEADLK ? -ECHILD : rc;
}

/* just_resumed: the world was resumed a moment ago, so the first look at waitpid would find nothing;
 * sleep first (a stop that came already has its SIGCHLD pending and ends the sleep at once). */
int wait_resumed(pt_engine *e, int timeout_ms, int extra_fd, int just_resumed)
{
    uint64_t deadline = timeout_ms >= 0 ? pt_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
    int found = 0; /* an event that sleep_in_waitpid() collected */
    for (int first = 1;; first = 0) {
        /* No pointer to a record is held between rounds: the dead threads' records go now, not at the
         * next stop, or a long wait under thread churn gathered thousands for every loop to walk. */
        pt_prune(e);
        if (take_stop_request(e))
            e->stop_requested = 1; /* looked at every round: a stream of hits must not starve it */
        if (!(first && just_resumed) && (found || drain(e) || e->exited)) {
            found = 0;
            int rc = settle_event(e, 0);
            if (rc != 0)
                return rc;
            continue;
        }
        if (e->stop_requested) { /* the wake-up fd was already read at the top of this round */
            e->stop_requested = 0;
            stop_all_masked(e);
            pt_prune(e);
            if (report_interrupt(e) || choose_report(e, 1) || choose_report(e, 0)) /* hits stay pending */
                return 1;
        }
        if (e->nrunning <= 0 && !status_can_come(e))
            return -ECHILD;
        if (extra_fd < 0 && e->nrunning <= FEW_RUNNING) { /* else ppoll (see "Sleeping in waitpid") */
            if (timeout_ms >= 0 && pt_now_ns() >= deadline)
                return 0;
            if (sleep_in_waitpid(e, timeout_ms >= 0 ? deadline : 0, &found) >= 0)
                continue; /* a status (in found) or a wake: the next round looks */
        }
        struct pollfd p[3];
        int n = sleep_until_ready(&e, 1, p, extra_fd, timeout_ms, deadline);
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
        syscall(SYS_tgkill, getpid(), e->tracer_tid, wake_signal());
    return 0;
}

/* Withdraw a pt_request_stop that no wait has acted on yet (another event was reported first). */
int pt_cancel_stop(pt_engine *e)
{
    int taken = take_stop_request(e) || e->stop_requested;
    e->stop_requested = 0;
    return taken;
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
