/* ptcore_process.c - several processes in one session: statuses kept for tids no engine claims yet (orphans), the
 * ring of peer engines that route each other's statuses, and holding one engine while another reports. */
#include "ptcore_internal.h"

static int take_own_orphan(pt_engine *e, int tid, int *status);

/* Remove kept status i, keeping the others in order (the oldest first: remember_orphan relies on it). */
static void drop_orphan(pt_engine *e, int i)
{
    e->n_orphans--;
    memmove(e->orphan_tid + i, e->orphan_tid + i + 1, (size_t)(e->n_orphans - i) * sizeof(int32_t));
    memmove(e->orphan_status + i, e->orphan_status + i + 1, (size_t)(e->n_orphans - i) * sizeof(int32_t));
}

/* Keep a status for whichever engine claims its tid later: the first stop of a clone or fork child
 * that came before its parent's event (parked: the thread stays stopped until then), or an exit
 * status of a tid no engine knows.  Stops are all kept, since one dropped would leave its thread
 * stopped for ever; exit statuses at most PT_MAX_ORPHANS, the oldest going first.  An exit status
 * replaces a parked stop of the same tid: the thread died before anyone claimed it, and its tid may
 * be a new thread's next (see find()). */
static void remember_orphan(pt_engine *e, int tid, int status)
{
    int is_exit = WIFEXITED(status) || WIFSIGNALED(status), old;
    if (is_exit) {
        while (take_own_orphan(e, tid, &old))
            ;
        int exits = 0, oldest = -1;
        for (int i = 0; i < e->n_orphans; i++)
            if (WIFEXITED(e->orphan_status[i]) || WIFSIGNALED(e->orphan_status[i])) {
                exits++;
                oldest = oldest < 0 ? i : oldest;
            }
        if (exits >= PT_MAX_ORPHANS) /* taken out in order, so the first one is the oldest */
            drop_orphan(e, oldest);
    }
    if (e->n_orphans == e->orphan_cap) {
        int32_t ncap = e->orphan_cap ? 2 * e->orphan_cap : 64;
        int32_t *tids = realloc(e->orphan_tid, (size_t)ncap * sizeof *tids);
        if (tids)
            e->orphan_tid = tids;
        int32_t *sts = tids ? realloc(e->orphan_status, (size_t)ncap * sizeof *sts) : NULL;
        if (!sts)
            return; /* out of memory: nothing better to do */
        e->orphan_status = sts;
        e->orphan_cap = ncap;
    }
    e->orphan_tid[e->n_orphans] = tid;
    e->orphan_status[e->n_orphans] = status;
    e->n_orphans++;
}

/* A status one engine collected may be kept by another engine of the same session (its waitpid(-1)
 * came first): look in the whole ring of peers. */
int take_orphan(pt_engine *e, int tid, int *status)
{
    if (take_own_orphan(e, tid, status))
        return 1;
    for (pt_engine *p = e->peer; p && p != e; p = p->peer)
        if (take_own_orphan(p, tid, status))
            return 1;
    return 0;
}

/* Take the oldest status kept for tid. */
static int take_own_orphan(pt_engine *e, int tid, int *status)
{
    for (int i = 0; i < e->n_orphans; i++) {
        if (e->orphan_tid[i] == tid) {
            *status = e->orphan_status[i];
            drop_orphan(e, i);
            return 1;
        }
    }
    return 0;
}

/* Several processes in one session (docs/design-notes.md, "Several processes"): a status of a thread
 * that belongs to a peer engine is handled by that engine, in that engine's state (its world running
 * or held).  When it gives the peer an event to report, every engine of the ring is flagged, so that
 * whichever one is waiting ends its wait (pt_wait returns 4).  Returns -1 when no peer owns tid. */
static int route_to_peer(pt_engine *e, int tid, int status)
{
    pt_engine *owner = NULL;
    for (pt_engine *p = e->peer; p && p != e && !owner; p = p->peer)
        if (tid == p->pid || find(p, tid))
            owner = p;
    if (!owner && (WIFEXITED(status) || WIFSIGNALED(status)))
        return -1; /* an exit status of a thread no engine knows: /proc has nothing to tell any more */
    /* Only with several processes (no peer, no loop): a peer's thread seen before the peer knew it.
     * Parking it would do too (the claimant looks in every engine's orphans), but the routing is kept
     * as it was measured with GDB's multi-process tests; one engine alone never reads /proc here. */
    for (pt_engine *p = e->peer; p && p != e && !owner; p = p->peer)
        if (tgid_of(tid) == p->pid)
            owner = p;
    if (!owner)
        return -1;
    int got = on_status(owner, tid, status);
    if (got) {
        owner->peer_event = 1;
        for (pt_engine *p = owner->peer; p && p != owner; p = p->peer)
            p->peer_event = 1;
    }
    return got;
}

void route_or_remember(pt_engine *e, int tid, int status)
{
    if (route_to_peer(e, tid, status) < 0)
        remember_orphan(e, tid, status);
}

/* ------------------------------------------------------------------------------------------------ */
/* several processes in one session (docs/design-notes.md, "Several processes")                      */

/* Put `peer` (an engine alone) into e's ring: from now on each routes the other's statuses. */
int pt_link_peer(pt_engine *e, pt_engine *peer)
{
    if (e == peer || peer->peer)
        return -EINVAL;
    if (!e->peer)
        e->peer = e;
    peer->peer = e->peer;
    e->peer = peer;
    return 0;
}

/* Take e out of its ring (an engine that is freed, or a process that left the session). */
void pt_unlink_peer(pt_engine *e)
{
    if (!e->peer)
        return;
    pt_engine *prev = e->peer;
    while (prev->peer != e)
        prev = prev->peer;
    prev->peer = e->peer;
    if (prev->peer == prev) {
        prev->peer = NULL; /* the last one left is alone again: no peer's event can be pending */
        prev->peer_event = 0;
    }
    for (int i = 0; i < e->n_orphans; i++) /* statuses e kept for the others are theirs */
        remember_orphan(prev, e->orphan_tid[i], e->orphan_status[i]);
    e->n_orphans = 0;
    e->peer = NULL;
}

/* All-stop over several processes: another engine reports, so this one's world stops too.  Events
 * caught while stopping stay pending (reported on a later resume, as any held thread's).  Returns 1
 * when this engine has an event to report (e->reported set; NULL when the process ended). */
static int hold_masked(pt_engine *e)
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

int pt_hold(pt_engine *e)
{
    WITH_SIGCHLD_BLOCKED(hold_masked(e));
}
