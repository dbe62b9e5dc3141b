/* ptcore_waiter.c - the one waiter over every process of a group: its sleep, the all-stop wait and resume
 * over several processes, and non-stop's wait over several processes (docs/design-notes.md, "Several
 * processes").  A group of one takes the single-process calls (wait_resumed, wait_one_masked) as they
 * are: no /proc read and no system call is added to the common case. */
#include "ptcore_internal.h"

/* Sleep in ppoll on SIGCHLD's eventfd, the stop-request eventfd of each of the n engines `m` and
 * extra_fd (when >= 0) until one is ready or the deadline passes (timeout_ms < 0: none).  p holds
 * n + 2 entries: p[0] SIGCHLD's, p[1..n] the engines', p[n + 1] extra_fd's.  Returns how many are
 * ready (0 after a signal), -ETIME at the deadline, or -errno.  SIGCHLD's eventfd is drained here.
 * The sleep mask is m[0]'s (every public call sets it). */
int sleep_until_ready(pt_engine *const *m, int32_t n, struct pollfd *p, int extra_fd, int timeout_ms,
                      uint64_t deadline)
{
    p[0] = (struct pollfd){chld_wake_fd(), POLLIN, 0};
    for (int32_t i = 0; i < n; i++)
        p[1 + i] = (struct pollfd){m[i]->wakefd, POLLIN, 0};
    p[n + 1] = (struct pollfd){extra_fd, POLLIN, 0};
    int wait_ms = -1;
    if (timeout_ms >= 0) {
        uint64_t now = pt_now_ns();
        if (now >= deadline)
            return -ETIME;
        wait_ms = (int)((deadline - now + 999999) / 1000000);
    }
    int ready = sleep_on(m[0], p, (int)n + (extra_fd >= 0 ? 2 : 1), wait_ms);
    if (ready < 0)
        return errno == EINTR ? 0 : -errno;
    if (ready > 0 && p[0].revents)
        drain_fd(chld_wake_fd());
    return ready;
}

/* The public calls over several engines run as WITH_SIGCHLD_BLOCKED does for one: the calling
 * thread holds SIGCHLD blocked (hold_sigchld sets each engine's sleep mask), and each engine's wake
 * timer is off afterwards. */
struct group_call {
    pt_engine **m;
    int32_t *n;       /* the running engines (all-stop wait: compacted as they stop being able to report) */
    pt_engine **also; /* all-stop wait: the other processes served, which report too once ended */
    int32_t nalso;
    int timeout_ms, extra_fd;
    uint32_t first;   /* non-stop: the engine looked at first */
    pt_engine **which; /* out: the engine that reports */
};

static int masked(int (*body)(struct group_call *), struct group_call *c)
{
    int32_t n = *c->n;
    pt_engine *all[n + 1]; /* the all-stop wait compacts c->m */
    memcpy(all, c->m, (size_t)n * sizeof *all);
    for (int32_t i = 0; i < n; i++)
        hold_sigchld(all[i]);
    int rc = body(c);
    for (int32_t i = 0; i < n; i++)
        disarm_wake_timer(all[i]);
    return rc;
}

static uint64_t deadline_of(int timeout_ms)
{
    return timeout_ms >= 0 ? pt_now_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* all-stop over several processes                                                                   */

/* Another engine reports, so this one's world stops too.  Events caught while stopping stay pending
 * (reported on a later resume, as any held thread's).  Returns 1 when this engine has an event to
 * report (e->reported set; NULL when the process ended). */
static int hold(pt_engine *e)
{
    if (take_stop_request(e))
        e->stop_requested = 1;
    if (!e->exited && !e->world_stopped)
        stop_all_masked(e);
    pt_prune(e);
    e->world_stopped = 1;
    if (e->stop_requested && !e->exited && report_interrupt(e)) {
        e->stop_requested = 0; /* a Ctrl-C for this process while another one reported: kept as */
        return 1;              /* its event, as the SIGINT gdbserver sends waits in the kernel */
    }
    return choose_report(e, 1) || (!e->exited && choose_report(e, 0));
}

/* m[i] reports: every other engine of m is held, its events kept for its next resume. */
static int report(struct group_call *c, int32_t i)
{
    for (int32_t j = 0; j < *c->n; j++)
        if (j != i)
            hold(c->m[j]);
    *c->which = c->m[i];
    group_clear_handed(c->m[i]);
    return 1;
}

/* Resume engines m[0..n) in order, each with the actions set on its threads.  One whose resume finds
 * an event pending runs nothing and reports (the engine's rule for one process, extended to all): the
 * ones started before it are stopped again.  Returns 1 with *which set then, else 0, or -errno. */
static int group_resume(struct group_call *c)
{
    if (*c->n)
        group_clear_handed(c->m[0]);
    for (int32_t i = 0; i < *c->n; i++) {
        int rc = resume_masked(c->m[i]);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            for (int32_t j = 0; j < i; j++)
                hold(c->m[j]);
            *c->which = c->m[i];
            return 1;
        }
    }
    return 0;
}

/* Every running engine is held and one event chosen among those that have one, and the processes of
 * c->also that ended meanwhile (a SIGKILL from outside; a vfork child whose exit came after its
 * parent's VFORK_DONE was reported, while only the parent runs): an ended process first, since its
 * exit came before what it caused in another (a vfork parent's VFORK_DONE, a waitpid returning), as
 * GDB sees it from gdbserver.  None: the event
 * went away while stopping, and every engine runs again.  Returns as group_wait. */
static int pick_among_all(struct group_call *c)
{
    int32_t n = *c->n, count = 0, ended = 0;
    pt_engine *candidates[n + c->nalso];
    for (int32_t i = 0; i < n; i++)
        if (hold(c->m[i]))
            candidates[count++] = c->m[i];
    for (int32_t i = 0; i < c->nalso; i++)
        if (c->also[i]->exited)
            candidates[count++] = c->also[i];
    group_clear_handed(c->m[0]);
    for (int32_t i = 0; i < count; i++)
        ended += candidates[i]->exited;
    if (count) {
        uint64_t pick = next_random(c->m[0]) % (uint64_t)(ended ? ended : count);
        for (int32_t i = 0; i < count; i++)
            if ((!ended || candidates[i]->exited) && pick-- == 0)
                *c->which = candidates[i];
        return 1;
    }
    for (int32_t i = 0; i < n; i++) {
        int rc = resume_masked(c->m[i]);
        if (rc == 1)
            return report(c, i); /* it had an event after all: it reports, nothing else runs */
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Drop the engines that can no longer report: no thread running and no exit status due. */
static void drop_idle(struct group_call *c)
{
    int32_t kept = 0;
    for (int32_t i = 0; i < *c->n; i++)
        if (c->m[i]->exited || c->m[i]->nrunning > 0 || status_can_come(c->m[i]))
            c->m[kept++] = c->m[i];
    *c->n = kept;
}

/* A stop request (pt_request_stop) on a running engine: that process stops and reports (an
 * interrupt, or an event its stop caught), the others are held. */
static int on_stop_request(struct group_call *c, int32_t i)
{
    pt_engine *e = c->m[i];
    e->stop_requested = 0;
    stop_all_masked(e);
    pt_prune(e);
    if (report_interrupt(e) || choose_report(e, 1) || choose_report(e, 0)) /* hits stay pending */
        return report(c, i);
    return 0;
}

/* All-stop over several processes: wait until one of the running engines m[0..n) has an event to
 * report, every one of them stopped.  The first engine is the waiter (the process started or attached
 * last): its own events are its to report; an event another member got (a status the waiter's
 * waitpid(-1) collected and handed over) stops every one and one is picked fairly.  Returns 1 with
 * *which set, 0 on timeout, 2 when extra_fd is readable (they run on), -ECHILD when none can report,
 * or -errno; *n loses the engines that can no longer report. */
static int group_wait(struct group_call *c)
{
    uint64_t deadline = deadline_of(c->timeout_ms);
    int found = 0;
    for (;;) {
        if (*c->n == 0)
            return -ECHILD;
        pt_engine *waiter = c->m[0];
        for (int32_t i = 0; i < *c->n; i++) {
            pt_prune(c->m[i]); /* looked at every round: a stream of hits must not starve a request */
            if (take_stop_request(c->m[i]))
                c->m[i]->stop_requested = 1;
        }
        if (found || drain(waiter) || waiter->exited || group_handed_event(waiter)) {
            found = 0;
            int rc = group_handed_event(waiter) ? 0 : settle_event(waiter, 1);
            if (rc == 1)
                return report(c, 0);
            if (rc == -ECHILD) {
                memmove(c->m, c->m + 1, (size_t)--*c->n * sizeof *c->m);
                continue;
            }
            if (rc < 0)
                return rc;
            if (group_handed_event(waiter) && (rc = pick_among_all(c)) != 0)
                return rc;
            continue;
        }
        for (int32_t i = 0; i < *c->n; i++)
            if (c->m[i]->stop_requested && on_stop_request(c, i))
                return 1;
        drop_idle(c);
        if (*c->n == 0)
            return -ECHILD;
        struct pollfd p[*c->n + 2];
        int ready = sleep_until_ready(c->m, *c->n, p, c->extra_fd, c->timeout_ms, deadline);
        if (ready == -ETIME)
            return 0;
        if (ready < 0)
            return ready;
        int requested = 0;
        for (int32_t i = 0; i < *c->n; i++) {
            if (p[1 + i].revents && take_stop_request(c->m[i]))
                c->m[i]->stop_requested = 1;
            requested |= c->m[i]->stop_requested;
        }
        if (ready > 0 && c->extra_fd >= 0 && p[*c->n + 1].revents) {
            if (drain(c->m[0]) || group_handed_event(c->m[0]))
                found = 1; /* events first; the input is still there next round */
            else if (!requested)
                return 2;
        }
    }
}

int pt_group_resume(pt_engine **engines, int32_t n, pt_engine **which)
{
    struct group_call c = {.m = engines, .n = &n, .which = which};
    *which = NULL;
    return masked(group_resume, &c);
}

int pt_group_wait(pt_engine **running, int32_t *nrunning, pt_engine **others, int32_t nothers, int timeout_ms,
                  int extra_fd, pt_engine **which)
{
    *which = NULL;
    if (*nrunning == 1 && nothers == 0) { /* one process: the engine's own wait */
        int rc = pt_wait(running[0], timeout_ms, extra_fd);
        *which = rc == 1 ? running[0] : NULL;
        *nrunning = rc == -ECHILD ? 0 : 1;
        return rc;
    }
    struct group_call c = {.m = running, .n = nrunning, .also = others, .nalso = nothers,
                           .timeout_ms = timeout_ms, .extra_fd = extra_fd, .which = which};
    return masked(group_wait, &c);
}

/* ------------------------------------------------------------------------------------------------ */
/* non-stop over several processes                                                                   */

/* One look at every engine from m[first] on (a caller rotating `first` serves them fairly): a
 * process ended (its exit status came to another engine's waitpid) or an event ready.  1 with
 * *which set, else 0. */
static int look_at_all(struct group_call *c)
{
    int32_t n = *c->n;
    for (int32_t k = 0; k < n; k++) {
        pt_engine *e = c->m[(c->first + (uint32_t)k) % (uint32_t)n];
        if (e->exited || nonstop_look(e)) {
            *c->which = e;
            return 1;
        }
    }
    return 0;
}

/* Non-stop over several processes (live ones and ones ended but not yet reported): the next event of
 * any thread of m[0..n), every other thread left running or stopped as it is.  Returns 1 with *which
 * set, 0 on timeout, 2 when extra_fd is readable, -ECHILD when no thread runs anywhere and nothing
 * is pending, or -errno. */
static int group_next_event(struct group_call *c)
{
    uint64_t deadline = deadline_of(c->timeout_ms);
    int32_t n = *c->n;
    for (;;) {
        group_clear_handed(c->m[0]);
        if (look_at_all(c))
            return 1;
        if (group_handed_event(c->m[0]))
            continue; /* a status collected for a member looked at before: look again */
        int can = 0;
        for (int32_t i = 0; i < n && !can; i++)
            can = c->m[i]->nrunning > 0 || exit_status_due(c->m[i]);
        if (!can)
            return -ECHILD;
        struct pollfd p[n + 2];
        int ready = sleep_until_ready(c->m, n, p, c->extra_fd, c->timeout_ms, deadline);
        if (ready == -ETIME)
            return 0;
        if (ready < 0)
            return ready;
        if (ready > 0 && c->extra_fd >= 0 && p[n + 1].revents) /* GDB first, unless an event is ready */
            return look_at_all(c) ? 1 : 2;
    }
}

int pt_group_next_event(pt_engine **engines, int32_t n, uint32_t first, int timeout_ms, int extra_fd,
                        pt_engine **which)
{
    *which = NULL;
    if (n == 0)
        return -ECHILD;
    if (n == 1 && !engines[0]->exited) { /* one process: the engine's own wait */
        int rc = pt_wait_one(engines[0], timeout_ms, extra_fd);
        *which = rc == 1 ? engines[0] : NULL;
        return rc;
    }
    struct group_call c = {.m = engines, .n = &n, .first = first, .timeout_ms = timeout_ms,
                           .extra_fd = extra_fd, .which = which};
    return masked(group_next_event, &c);
}
