/* ptcore_group.c - the process group: every engine of one session belongs to one group (a group of one
 * for the common single process).  The group keeps the statuses that arrive before their owner knows
 * the thread (early statuses) and hands a status of another member's thread to that member; the one
 * waiter over every member (ptcore_waiter.c) learns from it that a member other than the one it
 * collects for has an event. */
#include "ptcore_internal.h"

/* Exit statuses the group keeps at most for tids no engine knows (the oldest goes first).  Early
 * stops are all kept: each is a thread held stopped until its parent's clone or fork event claims it,
 * and a stop dropped would leave its thread stopped for ever. */
#define MAX_EARLY_EXITS 64

struct pt_group {
    int32_t nmembers;
    int32_t member_cap;
    pt_engine **members;
    int32_t nearly; /* statuses of tids that are not (yet) any member's, the oldest first */
    int32_t early_cap;
    int32_t *early_tid;
    int32_t *early_status;
    int32_t handed_event; /* a status handed to a member gave it an event (read by ptcore_waiter.c) */
};

static int add_member(pt_group *g, pt_engine *e)
{
    if (g->nmembers == g->member_cap) {
        int32_t ncap = g->member_cap ? 2 * g->member_cap : 4;
        pt_engine **members = realloc(g->members, (size_t)ncap * sizeof *members);
        if (!members)
            return -ENOMEM;
        g->members = members;
        g->member_cap = ncap;
    }
    g->members[g->nmembers++] = e;
    e->group = g;
    return 0;
}

/* A group of one for a new engine. */
int group_create(pt_engine *e)
{
    pt_group *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    if (add_member(g, e) < 0) {
        free(g);
        return -ENOMEM;
    }
    return 0;
}

static void group_free(pt_group *g)
{
    free(g->members);
    free(g->early_tid);
    free(g->early_status);
    free(g);
}

/* Remove early status i, keeping the others in order (the oldest first: keep_early relies on it). */
static void drop_early(pt_group *g, int i)
{
    g->nearly--;
    memmove(g->early_tid + i, g->early_tid + i + 1, (size_t)(g->nearly - i) * sizeof(int32_t));
    memmove(g->early_status + i, g->early_status + i + 1, (size_t)(g->nearly - i) * sizeof(int32_t));
}

/* Take the oldest status the group keeps for tid: a first stop or an exit that came before the
 * parent's clone or fork event told its engine of the thread. */
int take_early(pt_engine *e, int tid, int *status)
{
    pt_group *g = e->group;
    for (int i = 0; i < g->nearly; i++) {
        if (g->early_tid[i] == tid) {
            *status = g->early_status[i];
            drop_early(g, i);
            return 1;
        }
    }
    return 0;
}

/* Keep a status for whichever engine claims its tid later: the first stop of a clone or fork child
 * that came before its parent's event (parked: the thread stays stopped until then), or an exit
 * status of a tid no engine knows.  Stops are all kept; exit statuses at most MAX_EARLY_EXITS, the
 * oldest going first.  An exit status replaces a parked stop of the same tid: the thread died before
 * anyone claimed it, and its tid may be a new thread's next (see find()). */
static void keep_early(pt_engine *e, int tid, int status)
{
    pt_group *g = e->group;
    int old;
    if (WIFEXITED(status) || WIFSIGNALED(status)) {
        while (take_early(e, tid, &old))
            ;
        int exits = 0, oldest = -1;
        for (int i = 0; i < g->nearly; i++)
            if (WIFEXITED(g->early_status[i]) || WIFSIGNALED(g->early_status[i])) {
                exits++;
                oldest = oldest < 0 ? i : oldest;
            }
        if (exits >= MAX_EARLY_EXITS) /* taken out in order, so the first one is the oldest */
            drop_early(g, oldest);
    }
    if (g->nearly == g->early_cap) {
        int32_t ncap = g->early_cap ? 2 * g->early_cap : 64;
        int32_t *tids = realloc(g->early_tid, (size_t)ncap * sizeof *tids);
        if (tids)
            g->early_tid = tids;
        int32_t *sts = tids ? realloc(g->early_status, (size_t)ncap * sizeof *sts) : NULL;
        if (!sts)
            return; /* out of memory: nothing better to do */
        g->early_status = sts;
        g->early_cap = ncap;
    }
    g->early_tid[g->nearly] = tid;
    g->early_status[g->nearly] = status;
    g->nearly++;
}

/* Several processes in one group (docs/design-notes.md, "Several processes"): a status of a thread
 * that belongs to another member is handled by that member, in its state (its world running or
 * held).  When it gives that member an event to report, the group notes it, so that the group's
 * waiter stops every member and picks the event to report.  Returns -1 when no other member owns
 * tid. */
static int hand_to_member(pt_engine *e, int tid, int status)
{
    pt_group *g = e->group;
    if (g->nmembers == 1)
        return -1; /* one process: never reads /proc here */
    pt_engine *owner = NULL;
    for (int32_t i = 0; i < g->nmembers && !owner; i++)
        if (g->members[i] != e && (tid == g->members[i]->pid || find(g->members[i], tid)))
            owner = g->members[i];
    if (!owner && (WIFEXITED(status) || WIFSIGNALED(status)))
        return -1; /* an exit status of a thread no engine knows: /proc has nothing to tell any more */
    /* A member's thread seen before that member knew it.  Keeping it early would do too (the
     * claimant looks in the group's list), but the hand-over is kept as it was measured with GDB's
     * multi-process tests. */
    for (int32_t i = 0; i < g->nmembers && !owner; i++)
        if (g->members[i] != e && tgid_of(tid) == g->members[i]->pid)
            owner = g->members[i];
    if (!owner)
        return -1;
    int got = on_status(owner, tid, status);
    if (got)
        g->handed_event = 1;
    return got;
}

void hand_over_or_keep(pt_engine *e, int tid, int status)
{
    if (hand_to_member(e, tid, status) < 0)
        keep_early(e, tid, status);
}

/* Take e out of its group (an engine that is freed); the group goes with its last member.  The
 * statuses kept early stay with the group: they are the other members'. */
void group_leave(pt_engine *e)
{
    pt_group *g = e->group;
    if (!g)
        return;
    e->group = NULL;
    int32_t j = 0;
    for (int32_t i = 0; i < g->nmembers; i++)
        if (g->members[i] != e)
            g->members[j++] = g->members[i];
    g->nmembers = j;
    if (j == 0)
        group_free(g);
    else if (j == 1)
        g->handed_event = 0; /* the last one left is alone again: no other's event is pending */
}

/* Whether a status handed to a member since the last group_clear_handed() gave it an event. */
int group_handed_event(const pt_engine *e)
{
    return e->group->handed_event;
}

void group_clear_handed(pt_engine *e)
{
    e->group->handed_event = 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* joining a group (docs/design-notes.md, "Several processes")                                       */

/* Put `newcomer` (an engine alone in its group) into e's group: its early statuses go along. */
int pt_join_group(pt_engine *e, pt_engine *newcomer)
{
    pt_group *g = e->group, *old = newcomer->group;
    if (e == newcomer || old == g || old->nmembers != 1)
        return -EINVAL;
    if (add_member(g, newcomer) < 0) {
        newcomer->group = old;
        return -ENOMEM;
    }
    for (int i = 0; i < old->nearly; i++)
        keep_early(e, old->early_tid[i], old->early_status[i]);
    group_free(old);
    return 0;
}

int pt_group_size(const pt_engine *e)
{
    return e->group ? e->group->nmembers : 0;
}
