/* ptcore_memory.c - memory through /proc/PID/mem, software breakpoints (saved bytes shown in reads), registers,
 * xstate, siginfo and the debug registers. */
#include "ptcore_internal.h"
#include "agenthit.h"

pt_breakpoint *bp_at(pt_engine *e, uint64_t addr)
{
    for (int32_t i = 0; i < e->nbps; i++)
        if (e->bps[i].addr == addr)
            return &e->bps[i];
    return NULL;
}

int poke_byte(int memfd, uint64_t addr, uint8_t byte)
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
    pt_agent_forget(e, addr);
    e->removed_bps[e->removed_next++ % 16] = addr;
    return rc == -EIO || rc == -ESRCH ? 0 : rc; /* the mapping may be gone: nothing left to restore */
}

/* Lift (restore=1) or put back (restore=0) every int3 in the memory behind memfd. */
void write_all_breakpoints(pt_engine *e, int memfd, int restore)
{
    for (int32_t i = 0; i < e->nbps; i++)
        poke_byte(memfd, e->bps[i].addr, restore ? e->bps[i].orig : INT3);
}

/* ------------------------------------------------------------------------------------------------ */
/* registers                                                                                         */

int pt_get_regs(pt_engine *e, int32_t tid, uint8_t *buf216)
{
    (void)e;
    if (pt_ptrace(e, PTRACE_GETREGS, tid, 0, buf216) < 0)
        return -errno;
    return 0;
}

int pt_set_regs(pt_engine *e, int32_t tid, const uint8_t *buf216)
{
    const struct user_regs_struct *r = (const void *)buf216;
    pt_thread *t = find(e, tid);
    if (pt_ptrace(e, PTRACE_SETREGS, tid, 0, (void *)buf216) < 0)
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

int pt_get_xstate(pt_engine *e, int32_t tid, uint8_t *buf, uint32_t len)
{
    struct iovec iov = {buf, len};
    if (pt_ptrace(e, PTRACE_GETREGSET, tid, (void *)0x202 /* NT_X86_XSTATE */, &iov) < 0)
        return -errno;
    return (int)iov.iov_len;
}

int pt_set_xstate(pt_engine *e, int32_t tid, const uint8_t *buf, uint32_t len)
{
    struct iovec iov = {(void *)buf, len};
    if (pt_ptrace(e, PTRACE_SETREGSET, tid, (void *)0x202, &iov) < 0)
        return -errno;
    return 0;
}

/* A thread stopped by our PTRACE_INTERRUPT (the stop-all, an attach) has the siginfo of that event
 * stop, SIGTRAP with si_code PTRACE_EVENT_STOP << 8, which GDB would show as $_siginfo.  gdbserver
 * and GDB's native target stop a thread with a SIGSTOP, which the kernel dequeues after any signal
 * already pending: so a thread with a signal pending shows that signal (it is delivered when the
 * thread runs), any other the SIGSTOP (tgkill: SI_TKILL, our pid) (attach-into-signal.exp). */
int pt_get_siginfo(pt_engine *e, int32_t tid, uint8_t *buf128)
{
    if (pt_ptrace(e, PTRACE_GETSIGINFO, tid, 0, buf128) < 0)
        return -errno;
    siginfo_t *si = (siginfo_t *)(void *)buf128;
    if (si->si_signo == SIGTRAP && si->si_code == ((PTRACE_EVENT_STOP << 8) | SIGTRAP)) {
        struct __ptrace_peeksiginfo_args args = {.off = 0, .flags = 0, .nr = 1};
        if (pt_ptrace(e, PTRACE_PEEKSIGINFO, tid, &args, buf128) == 1)
            return 0; /* the first signal queued for the thread itself */
        args.flags = PTRACE_PEEKSIGINFO_SHARED;
        if (pt_ptrace(e, PTRACE_PEEKSIGINFO, tid, &args, buf128) == 1)
            return 0; /* else one queued for the process */
        memset(buf128, 0, 128);
        si->si_signo = SIGSTOP;
        si->si_code = SI_TKILL;
        si->si_pid = getpid();
        si->si_uid = getuid();
    }
    return 0;
}

int pt_set_siginfo(pt_engine *e, int32_t tid, const uint8_t *buf128)
{
    return pt_ptrace(e, PTRACE_SETSIGINFO, tid, 0, (void *)buf128) < 0 ? -errno : 0;
}

int apply_debugregs(pt_engine *e, int32_t tid)
{
    /* DR7 first to 0 so that changing an address never arms a half-configured slot. */
    if (pt_ptrace(e, PTRACE_POKEUSER, tid, (void *)DR_OFFSET(7), 0) < 0)
        return -errno;
    for (int i = 0; i < 4; i++)
        if (pt_ptrace(e, PTRACE_POKEUSER, tid, (void *)DR_OFFSET(i), (void *)(uintptr_t)e->dr[i]) < 0)
            return -errno;
    if (e->dr7 && pt_ptrace(e, PTRACE_POKEUSER, tid, (void *)DR_OFFSET(7), (void *)(uintptr_t)e->dr7) < 0)
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

int pt_get_dr6(pt_engine *e, int32_t tid, uint64_t *out)
{
    errno = 0;
    long v = pt_ptrace(e, PTRACE_PEEKUSER, tid, (void *)DR_OFFSET(6), 0);
    if (errno)
        return -errno;
    *out = (uint64_t)v;
    return 0;
}
