/* ptcore.h - ptstub's C helper: the all-stop hot loop over ptrace.
 *
 * This header is the single source of truth for the C/Python boundary: build_ptcore.py hands the
 * part between the CDEF markers to cffi verbatim.  Every function returns a result >= 0 or -errno.
 * The C side owns mechanism (wait, interrupt, step over, restart fix-up); Python owns policy (which
 * threads to resume, which breakpoints exist, what to report to GDB).
 */
#ifndef PTSTUB_PTCORE_H
#define PTSTUB_PTCORE_H
#include <stdint.h>

/* CDEF-BEGIN */
/* Thread states (docs/kernel-facts.md §2).  STOPPING is RUNNING with interrupt_pending set. */
enum {
    PT_RUNNING = 0,
    PT_STOPPED = 1,
    PT_EXITING = 2, /* past PTRACE_EVENT_EXIT or a zombie: never interrupted, never waited for */
    PT_GONE = 3
};

/* Where a thread is in its life, beside its run state: NEW is a clone child seized at its parent's
 * PTRACE_EVENT_CLONE whose first PTRACE_EVENT_STOP is still to come (ptrace(2): no SIGSTOP under
 * SEIZE); EXITING is past PTRACE_EVENT_EXIT, or a zombie, or dead with its exit still to report: it
 * never stops again, so it is never interrupted or waited for (run state PT_EXITING once resumed). */
enum { PT_PHASE_LIVE = 0, PT_PHASE_NEW = 1, PT_PHASE_EXITING = 2 };

/* What a thread does on the next pt_resume. */
enum { PT_ACT_NONE = 0, PT_ACT_CONT = 1, PT_ACT_STEP = 2, PT_ACT_RANGE = 3 };

/* Pending (not yet reported) event kinds. */
enum {
    PT_EV_NONE = 0,
    PT_EV_BREAKPOINT = 1, /* int3 on an inserted breakpoint; pc already rewound */
    PT_EV_STEP = 2,       /* single-step or range step finished */
    PT_EV_SIGNAL = 3,     /* signal-delivery-stop; ev_sig is the signal */
    PT_EV_INTERRUPT = 4,  /* stopped on request (pt_request_stop / timeout) */
    PT_EV_EXEC = 5,       /* execve done; ev_data = former tid */
    PT_EV_FORK = 6,       /* ev_data = child pid (only with PT_OPT_FORK_EVENTS) */
    PT_EV_VFORK = 7,
    PT_EV_VFORK_DONE = 8,
    PT_EV_HWTRAP = 9, /* TRAP_HWBKPT: hardware breakpoint or watchpoint; ev_data = DR6 */
    PT_EV_EXITED = 10, /* whole process ended; ev_data = raw wait status */
    PT_EV_SYSCALL = 11, /* syscall entry/exit stop (catch syscall); ev_sig = 0 entry, 1 exit */
    PT_EV_THREAD_EXITED = 12 /* a thread other than the leader ended (PT_OPT_THREAD_EXITS); ev_data = wait
                              * status.  The thread is dead: once the event is taken it is PT_GONE. */
};

/* Engine option bits (pt_engine.options). */
enum {
    PT_OPT_FORK_EVENTS = 1,   /* report forks instead of detaching the child after removing breakpoints */
    PT_OPT_EINTR_FIXUP = 2,   /* transparent restart of calls that return -EINTR at our interrupt stops */
    PT_OPT_CATCH_SYSCALLS = 4, /* resume with PTRACE_SYSCALL */
    PT_OPT_THREAD_EXITS = 8    /* report the end of each thread but the leader (GDB's QThreadEvents) */
};

typedef struct pt_thread {
    int32_t tid;
    int32_t state;
    int32_t interrupt_pending; /* PTRACE_INTERRUPT sent, its PTRACE_EVENT_STOP not seen yet */
    int32_t phase;             /* PT_PHASE_*: new, live, or past PTRACE_EVENT_EXIT */
    int32_t action;            /* PT_ACT_*, set before pt_resume */
    int32_t action_sig;        /* signal to deliver on resume, 0 for none */
    uint64_t range_start;      /* PT_ACT_RANGE: keep stepping while range_start <= pc < range_end */
    uint64_t range_end;
    int32_t ev_kind;           /* pending event (PT_EV_*), PT_EV_NONE if none */
    int32_t ev_sig;
    uint64_t ev_pc;
    uint64_t ev_data;
    int32_t deliver_sig;       /* a passed signal collected while stopping, delivered on resume */
    int32_t stale_trap;        /* si_code of a SIGTRAP already accounted for and still queued: swallow it */
    int32_t in_syscall;        /* PT_OPT_CATCH_SYSCALLS: between entry and exit stops */
    int32_t on_breakpoint;     /* its pc may sit on one of our int3s: step over it before resuming */
    int32_t want_stop;         /* non-stop: pt_stop_thread asked for a stop, to report as PT_EV_INTERRUPT */
    int32_t at_signal_stop;    /* stopped at a signal-delivery-stop: only there does a resume deliver a signal */
    uint64_t inject_mask;      /* bit sig-1: queued with tgkill for GDB; pass it through at its stop, unreported */
    uint64_t resumed_ns;       /* CLOCK_MONOTONIC time of the last resume */
    uint64_t restart_pc;       /* a timed wait we restart: where, its deadline, the timeout we wrote */
    uint64_t restart_deadline_ns;
    int64_t restart_written;
    uint64_t bp_pc;            /* its pc when on_breakpoint was set (or GDB last set it) */
    int32_t step_unfinished;   /* resumed with PTRACE_SINGLESTEP and its step trap not seen yet */
    int32_t resume_due;        /* a stop with nothing to report, its resume deferred to the end of the drain */
    int32_t pass_due;          /* 1: passes a breakpoint nobody hears of (agenthit.h); 2: held while one does */
    uint64_t serial;           /* the engine's count of records when this one was made: a reused tid is told apart */
} pt_thread;

typedef struct pt_breakpoint {
    uint64_t addr;
    uint8_t orig;     /* the program's byte under the int3 */
    uint8_t pad[7];
} pt_breakpoint;

/* One ptrace request as the kernel answered it, kept while the engine's ptrace log is on. */
typedef struct pt_ptrace_record {
    int32_t request; /* PTRACE_* */
    int32_t tid;
    int64_t result;  /* ptrace()'s return value */
    int32_t err;     /* errno when result is -1, else 0 */
    int32_t pad;
    uint64_t addr;   /* ptrace()'s addr and data arguments, as integers */
    uint64_t data;
} pt_ptrace_record;

typedef struct pt_ptrace_log pt_ptrace_log; /* a ring of records, private to the engine */
typedef struct pt_group pt_group;           /* the engines of one session (ptcore_group.c), private */

typedef struct pt_engine {
    int32_t pid;
    int32_t memfd;        /* /proc/PID/mem, reopened after exec */
    int32_t wakefd;       /* eventfd: pt_request_stop() from any thread makes pt_wait stop all */
    int32_t options;
    int32_t nthreads;
    int32_t cap;
    pt_thread **threads;       /* stable pointers: a thread's record never moves while it lives */
    int32_t *hash;             /* open addressing: tid -> index + 1 into threads, 0 = empty */
    int32_t hashcap;           /* power of two, >= 2 * cap */
    int32_t nrunning;          /* threads in PT_RUNNING (incl. clone children not yet stopped) */
    int32_t stopping;          /* inside a stop-all: every stop is kept, nothing is resumed */
    int32_t world_stopped;     /* every thread is stopped and the world stays so until pt_resume */
    int32_t launched;          /* we forked it: PTRACE_O_EXITKILL, kill on close */
    int32_t nbps;
    int32_t bpcap;
    pt_breakpoint *bps;
    uint64_t rng;              /* xorshift state for fair choice among pending events */
    uint32_t resume_rotor;     /* where the next resume batch starts in the thread table */
    int32_t last_stepped_tid;  /* preferred when several events are pending */
    int32_t report_tid;        /* set by pt_wait/pt_resume when an event is to be reported */
    pt_thread *reported;       /* that thread's record (NULL when the process ended) */
    int32_t exited;            /* the process is gone; exit_status holds its raw wait status */
    int32_t exit_status;
    int32_t stop_requested;
    int32_t vfork_parent_tid;  /* internal vfork window: breakpoints lifted until VFORK_DONE */
    uint64_t pass_signals;     /* bit (sig-1): deliver without stopping (QPassSignals) */
    int32_t realtime;          /* 1: a resume batch of many threads may run at SCHED_FIFO (pt_set_realtime) */
    uint64_t dr[4];            /* hardware debug registers applied to every thread */
    uint64_t dr7;
    /* statistics, for logs and benchmarks */
    uint64_t n_stops;
    uint64_t n_interrupts;
    uint64_t n_eintr_fixups;
    uint64_t n_emulated;       /* breakpoints passed by emulating the instruction, not stepping */
    uint64_t n_strays;         /* threads traced but missing from the table, let go at detach */
    uint64_t n_late_detaches;  /* threads of the table in no ptrace-stop at detach, let go at their next */
    uint64_t n_stale_stops;
    uint64_t last_stop_ns;     /* duration of the last stop-all (first event to all stopped) */
    uint64_t resumed_ns;       /* CLOCK_MONOTONIC when the last resume batch had resumed every thread due */
    uint64_t n_fifo_batches;   /* resume batches run at SCHED_FIFO, and at nice -15 (boost_begin) */
    uint64_t n_nice_batches;
    uint64_t n_records;        /* thread records made so far (pt_thread.serial) */
    uint8_t sleep_mask[128];   /* sigset_t: the caller's signal mask without SIGCHLD, for ppoll */
    /* one drain of the kernel's statuses (see drain() in ptcore_events.c) */
    int32_t collecting;        /* inside a drain with the world running: resumes are deferred */
    int32_t ndue;              /* threads whose resume was deferred, in due[] */
    int32_t duecap;
    pt_thread **due;
    /* sleeping in waitpid itself (see "Sleeping in waitpid" in ptcore_wake.c) */
    int32_t tracer_tid;        /* the thread that waits: where pt_request_stop sends the wake signal */
    int32_t stop_flag;         /* set by pt_request_stop from any thread (atomic), taken by the waits */
    int32_t blocking;          /* the tracer is (about to be) asleep in waitpid (atomic) */
    int32_t timer_state;       /* 0: no timer, 1: created for tracer_tid, 2: armed */
    void *wake_timer;          /* timer_t: wakes the blocked waitpid every 100 ms and at deadlines */
    /* several processes in one session (docs/design-notes.md, "Several processes") */
    pt_group *group;           /* every engine of the session, a group of one for one process */
    pt_ptrace_log *ptrace_log; /* NULL unless pt_ptrace_log_enable: every ptrace call is recorded there */
    /* int3s removed lately: a trap one of them caused just before it went is known as ours */
    uint64_t removed_bps[16];
    uint32_t removed_next;
    /* target-side conditions and commands judged at a hit (agenthit.h) */
    void *agent;
    int32_t agent_due;         /* threads with pass_due == 1, waiting for the end of the drain */
} pt_engine;

/* Launch flags. */
enum { PT_LAUNCH_NO_ASLR = 1, PT_LAUNCH_SETPGID = 2 };

/* e is a new engine made with pid 0: pt_launch gives it the child's pid; pt_adopt_launched follows. */
int pt_launch(pt_engine *e, const char *path, char *const argv[], char *const envp[], const char *cwd,
              int flags, int stdin_fd, int stdout_fd, int stderr_fd);
pt_engine *pt_engine_new(int32_t pid, uint64_t seed);
void pt_engine_free(pt_engine *e);
int pt_attach_all(pt_engine *e);
int pt_adopt_launched(pt_engine *e);
int pt_adopt_child(pt_engine *child, const pt_engine *parent);

int pt_resume(pt_engine *e);
int pt_wait(pt_engine *e, int timeout_ms, int extra_fd);
int pt_cont(pt_engine *e, int timeout_ms, int extra_fd);
int pt_set_actions(pt_engine *e, int action);
int pt_set_thread_actions(pt_engine *e, const int32_t *tids, const int32_t *actions, const int32_t *sigs, int32_t n);
int pt_stop_all(pt_engine *e);
int pt_request_stop(pt_engine *e);
int pt_cancel_stop(pt_engine *e);
int pt_find_thread(pt_engine *e, int32_t tid);
int pt_prune(pt_engine *e);
int pt_set_options(pt_engine *e, int options);

/* Python reads the records above directly but changes them only through these (ptcore_setters.c). */
int pt_set_action(pt_thread *t, int32_t action, int32_t sig, uint64_t range_start, uint64_t range_end);
int pt_set_action_signal(pt_engine *e, int32_t tid, int32_t sig);
int pt_set_deliver_signal(pt_engine *e, int32_t tid, int32_t sig);
int pt_withdraw_thread_stop(pt_engine *e, int32_t tid);
int pt_select_report(pt_engine *e, int32_t tid);
int pt_take_event(pt_engine *e, pt_thread *t);
int pt_set_pass_signals(pt_engine *e, uint64_t mask);
int pt_set_realtime(pt_engine *e, int32_t allowed);

int pt_insert_breakpoint(pt_engine *e, uint64_t addr);
int pt_remove_breakpoint(pt_engine *e, uint64_t addr);
int64_t pt_read_memory(pt_engine *e, uint64_t addr, uint8_t *buf, uint64_t len);
int64_t pt_write_memory(pt_engine *e, uint64_t addr, const uint8_t *buf, uint64_t len);

int pt_get_regs(pt_engine *e, int32_t tid, uint8_t *buf216);
int pt_set_regs(pt_engine *e, int32_t tid, const uint8_t *buf216);
int pt_get_xstate(pt_engine *e, int32_t tid, uint8_t *buf, uint32_t len);
int pt_set_xstate(pt_engine *e, int32_t tid, const uint8_t *buf, uint32_t len);
int pt_get_siginfo(pt_engine *e, int32_t tid, uint8_t *buf128);
int pt_set_siginfo(pt_engine *e, int32_t tid, const uint8_t *buf128);
int pt_set_debugregs(pt_engine *e, const uint64_t *dr4, uint64_t dr7);
int pt_get_dr6(pt_engine *e, int32_t tid, uint64_t *out);

int pt_detach(pt_engine *e);
int pt_kill(pt_engine *e);
/* Non-stop mode (docs/design-notes.md, "Non-stop mode"): threads run and stop one by one. */
int pt_resume_some(pt_engine *e);
int pt_wait_one(pt_engine *e, int timeout_ms, int extra_fd);
int pt_stop_thread(pt_engine *e, int32_t tid);
/* Several processes (docs/design-notes.md, "Several processes"): the engines of a session form one
 * group, statuses go to the member that owns the thread, and one waiter serves every member
 * (ptcore_waiter.c).  An engine leaves its group when it is freed.  pt_group_resume resumes engines in
 * order, each with its actions (1 and *which: that one had an event and reports, the ones before it
 * held again); pt_group_wait waits for the first event of the running engines, every one then stopped
 * (1 and *which; 0 timeout, 2 extra_fd readable, -ECHILD none can report; *nrunning loses the
 * engines that cannot), the held `others` reporting too if they end meanwhile; pt_group_next_event is non-stop's wait over engines, from engines[first] on.
 * A group of one takes pt_wait / pt_wait_one. */
int pt_join_group(pt_engine *e, pt_engine *newcomer);
int pt_group_size(const pt_engine *e);
int pt_group_resume(pt_engine **engines, int32_t n, pt_engine **which);
int pt_group_wait(pt_engine **running, int32_t *nrunning, pt_engine **others, int32_t nothers, int timeout_ms,
                  int extra_fd, pt_engine **which);
int pt_group_next_event(pt_engine **engines, int32_t n, uint32_t first, int timeout_ms, int extra_fd,
                        pt_engine **which);

int pt_measure_stop_all(pt_engine *e, int rounds, uint64_t *stop_ns, uint64_t *cycle_ns);
uint64_t pt_now_ns(void);

/* The ptrace log (off by default): pt_ptrace_log_enable keeps the last `capacity` ptrace calls of
 * the engine, pt_ptrace_log_take moves up to `max` of the oldest into out (returns how many) and
 * adds to *dropped the records overwritten before they were taken. */
int pt_ptrace_log_enable(pt_engine *e, int32_t capacity);
void pt_ptrace_log_disable(pt_engine *e);
int pt_ptrace_log_take(pt_engine *e, pt_ptrace_record *out, int32_t max, uint64_t *dropped);

/* CPUID(leaf, subleaf) into out[0..3] = EAX, EBX, ECX, EDX (the XSAVE layout, arch/xsave.py). */
void pt_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t *out);
/* CDEF-END */

#endif
