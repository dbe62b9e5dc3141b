/* ptcore_restart.c - transparent restart (docs/kernel-facts.md §3): a call our interrupt pulled out with -EINTR
 * is restarted, and a timed wait restarted keeps its deadline. */
#include "ptcore_internal.h"
#include "agenthit.h"

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
    if (pt_ptrace(e, PTRACE_SETREGS, t->tid, 0, r) == 0)
        e->n_eintr_fixups++;
}

/* Work at the interrupt stop we asked for: restart fix-up, and the trap-as-interrupted race
 * (docs/kernel-facts.md §2.3): pc one past a breakpoint of ours with an int3 SIGTRAP queued is a hit; a queued
 * hardware trap is a watchpoint hit, taken now, while DR6 still names the registers GDB set (GDB
 * re-inserts its watchpoints in another order before the next resume). */
int at_interrupt_stop(pt_engine *e, pt_thread *t)
{
    struct user_regs_struct r;
    if (pt_ptrace(e, PTRACE_GETREGS, t->tid, 0, &r) < 0)
        return 0;
    /* A trap already counted (stale_trap) is the one queued: no instruction ran since, so no new hit
     * (and pc - 1 on a breakpoint is then a pass by emulate_over, not an int3 executed). */
    int after_bp = e->nbps && bp_at(e, r.rip - 1);
    int code = !t->stale_trap && (after_bp || e->dr7) ? queued_trap(e, t->tid) : 0;
    if ((code == SI_KERNEL || code == -1) && after_bp) {
        r.rip -= 1;
        if (pt_ptrace(e, PTRACE_SETREGS, t->tid, 0, &r) == 0) {
            t->stale_trap = SI_KERNEL;
            return breakpoint_hit(e, t, &r);
        }
    }
    uint64_t dr6 = 0;
    if (code == TRAP_HWBKPT && pt_get_dr6(e, t->tid, &dr6) == 0 && (dr6 & 0xf)) {
        pt_ptrace(e, PTRACE_POKEUSER, t->tid, (void *)DR_OFFSET(6), 0);
        t->stale_trap = TRAP_HWBKPT;
        return record(t, PT_EV_HWTRAP, SIGTRAP, r.rip, dr6);
    }
    fixup_eintr(e, t, &r);
    return 0;
}
