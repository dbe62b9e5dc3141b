/* ptcore_internal.h - private header of ptstub's all-stop engine core (csrc/ptcore_*.c): waitpid,
 * stop-all, breakpoint step-over, memory, registers.
 *
 * Follows ptrace(2) (PTRACE_SEIZE / PTRACE_INTERRUPT semantics), signal(7) (syscall restart) and the
 * facts in docs/kernel-facts.md §2-§3.  Invariants:
 *   - one tracer thread calls everything here (ptrace requires it);
 *   - a thread is PT_RUNNING exactly when the kernel may run it; e->nrunning counts them;
 *   - we never PTRACE_INTERRUPT a thread that is stopped (the interrupt would stay armed);
 *   - an event collected while stopping the world is kept on its thread, never dropped;
 *   - a stop at an int3 of ours has its pc rewound before anyone can look at it.
 *   - every ptrace request goes through pt_ptrace() (below), so the ptrace log sees it;
 *   - Python reads the records of ptcore.h but changes them only through ptcore_setters.c.
 * Errors are returned as -errno; nothing here prints or exits.
 *
 * ptcore.h is the public (cffi) surface; this header declares what the files of the engine share.
 * Every declaration here is hidden: nothing but ptcore.h's functions leaves the shared object.
 */
#ifndef PTSTUB_PTCORE_INTERNAL_H
#define PTSTUB_PTCORE_INTERNAL_H
#define _GNU_SOURCE
#include "ptcore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif
#define ERESTARTNOHAND 514
#define INT3 0xcc
#define DR_OFFSET(n) (offsetof(struct user, u_debugreg) + (n) * sizeof(long))


/* Sleep in waitpid only while few threads run (see "Sleeping in waitpid" in ptcore_wake.c). */
#define FEW_RUNNING 3
/* boost_begin()'s answers besides a nice value to restore: the tracer's priority was left alone, or
 * it runs at SCHED_FIFO until boost_end. */
#define NOT_BOOSTED (-2147483647 - 1)
#define BOOSTED_FIFO (-2147483647)

/* Body of each public call that waits: the work runs with SIGCHLD blocked (see sleep_on).  The calling
 * thread keeps it blocked between calls (hold_sigchld), so a call costs no signal-mask system call. */
#define WITH_SIGCHLD_BLOCKED(call)                                                                     \
    do {                                                                                               \
        hold_sigchld(e);                                                                               \
        int rc_ = (call);                                                                              \
        disarm_wake_timer(e);                                                                          \
        return rc_;                                                                                    \
    } while (0)

#pragma GCC visibility push(hidden)

/* ptcore_ptrace.c */
void ptrace_log_record(pt_engine *e, int request, int32_t tid, void *addr, void *data, long result);

/* Every ptrace call of the engine goes through here, so the ptrace log can show what was asked of
 * the kernel.  Off, it costs one test of a pointer next to a system call. */
static inline long pt_ptrace(pt_engine *e, int request, int32_t tid, void *addr, void *data)
{
    long result = ptrace((enum __ptrace_request)request, tid, addr, data);
    if (__builtin_expect(e->ptrace_log != NULL, 0))
        ptrace_log_record(e, request, tid, addr, data, result);
    return result;
}

/* ptcore_wake.c */
uint64_t next_random(pt_engine *e);
int install_sigchld_wakeup(void);
void drain_fd(int fd);
void install_wake_signal(void);
pid_t self_tid(void);
int take_stop_request(pt_engine *e);
int sleep_in_waitpid(pt_engine *e, uint64_t deadline_ns, int *found);
int sleep_on(pt_engine *e, struct pollfd *fds, int nfds, int timeout_ms);
void set_sleep_mask(pt_engine *e, const sigset_t *callers);
void block_sigchld(sigset_t *old);
void restore_mask(const sigset_t *old);
void hold_sigchld(pt_engine *e);
void engine_born(void);
void engine_gone(void);
void disarm_wake_timer(pt_engine *e);
int chld_wake_fd(void);
int wake_signal(void);

/* ptcore_threads.c */
int read_proc_file(const char *path, char *buf, size_t size);
int tgid_of(int tid);
char state_letter(const char *stat_path);
char task_state(int pid, int tid);
int has_deliverable_signal(int pid, int tid);
int queued_trap(pt_engine *e, int tid);
void hash_rebuild(pt_engine *e);
pt_thread *find(pt_engine *e, int32_t tid);
void set_state(pt_engine *e, pt_thread *t, int32_t state);
pt_thread *add_thread(pt_engine *e, int32_t tid, int32_t state);

/* ptcore_group.c */
int group_create(pt_engine *e);
void group_leave(pt_engine *e);
int take_early(pt_engine *e, int tid, int *status);
void hand_over_or_keep(pt_engine *e, int tid, int status);
int group_handed_event(const pt_engine *e);
void group_clear_handed(pt_engine *e);

/* ptcore_memory.c */
pt_breakpoint *bp_at(pt_engine *e, uint64_t addr);
int poke_byte(int memfd, uint64_t addr, uint8_t byte);
void write_all_breakpoints(pt_engine *e, int memfd, int restore);
int apply_debugregs(pt_engine *e, int32_t tid);

/* ptcore_threads.c */
int online_cpus(void);
int boost_begin(pt_engine *e, int32_t due);
void boost_end(int previous);
int is_signal_delivery_stop(int event, int sig);
int take_resume_signal(pt_engine *e, pt_thread *t);
void keep_action_signals(pt_engine *e);
int resume_thread(pt_engine *e, pt_thread *t, int sig);
void settle_deferred(pt_engine *e, int hold);
int keep_or_resume(pt_engine *e, pt_thread *t);
int record(pt_thread *t, int kind, int sig, uint64_t pc, uint64_t data);

/* ptcore_restart.c */
int at_interrupt_stop(pt_engine *e, pt_thread *t);

/* ptcore_events.c */
int on_exit_status(pt_engine *e, pt_thread *t, int tid, int status);
int on_event_stop(pt_engine *e, pt_thread *t, int sig);
void adopt_clone(pt_engine *e, int32_t newtid);
void remove_breakpoints_from_child(pt_engine *e, int child);
void reopen_memfd(pt_engine *e);
uint64_t step_hit_debugreg(pt_engine *e, int32_t tid);
int on_signal(pt_engine *e, pt_thread *t, int sig);
int on_status(pt_engine *e, int tid, int status);
int drain_from(pt_engine *e, int hold, int tid, int status);
int drain(pt_engine *e);

/* ptcore_allstop.c */
int wait_all_stopped(pt_engine *e);
int stop_all_masked(pt_engine *e);
int has_event(pt_thread *t);
int choose_report(pt_engine *e, int only_resumed);
int emulate_over(pt_engine *e, pt_thread *t, uint64_t pc);
int step_over(pt_engine *e, pt_thread *t, uint64_t pc);
int resume_masked(pt_engine *e);
int report_interrupt(pt_engine *e);
int settle_event(pt_engine *e, int in_group);
int exit_status_due(pt_engine *e);
int status_can_come(pt_engine *e);
int wait_resumed(pt_engine *e, int timeout_ms, int extra_fd, int just_resumed);

/* ptcore_lifecycle.c */
int attach_all_masked(pt_engine *e);

/* ptcore_nonstop.c */
int stopped_on_request(pt_engine *e, pt_thread *t);
int nonstop_look(pt_engine *e);
int wait_one_masked(pt_engine *e, int timeout_ms, int extra_fd);

/* ptcore_waiter.c */
int sleep_until_ready(pt_engine *const *m, int32_t n, struct pollfd *p, int extra_fd, int timeout_ms,
                      uint64_t deadline);

#pragma GCC visibility pop

#endif
