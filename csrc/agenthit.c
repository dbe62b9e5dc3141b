/* agenthit.c - the conditions and commands of an engine's breakpoints, and the verdict at a hit.
 *
 * Same rules as the session's Python path (ptstub/session.py, _should_report): the hit is reported
 * unless every condition is false (a condition that fails counts as true, as in gdbserver); with
 * commands it is not reported either, once they ran in order, the first that fails ending the rest
 * (gdbserver's run_breakpoint_commands).  Registers come from the user_regs_struct the engine read at
 * the hit (pc already rewound), memory through pt_read_memory (int3 bytes hidden), as the Python
 * readers give them.
 */
#define _GNU_SOURCE
#include "agenthit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentexpr.h"

#define MAX_REGS 128

typedef struct agent_point {
    uint64_t addr;
    int32_t ncond, ncmd;
    uint32_t *lens;  /* ncond + ncmd */
    uint8_t **codes;
} agent_point;

typedef struct pt_agent {
    int32_t npoints, cap;
    agent_point *points;
    int16_t reg_offset[MAX_REGS];
    uint8_t reg_size[MAX_REGS];
    int32_t out_fd;
    uint64_t judged, passed;
} pt_agent;

static pt_agent *agent_of(pt_engine *e)
{
    if (!e->agent) {
        pt_agent *a = calloc(1, sizeof *a);
        if (!a)
            return NULL;
        a->out_fd = 1;
        e->agent = a;
    }
    return e->agent;
}

static void free_point(agent_point *p)
{
    for (int32_t i = 0; i < p->ncond + p->ncmd; i++)
        free(p->codes[i]);
    free(p->codes);
    free(p->lens);
}

static agent_point *point_at(pt_agent *a, uint64_t addr)
{
    for (int32_t i = 0; a && i < a->npoints; i++)
        if (a->points[i].addr == addr)
            return &a->points[i];
    return NULL;
}

int pt_agent_forget(pt_engine *e, uint64_t addr)
{
    pt_agent *a = e->agent;
    agent_point *p = point_at(a, addr);
    if (!p)
        return 0;
    free_point(p);
    *p = a->points[--a->npoints];
    return 1;
}

void pt_agent_forget_all(pt_engine *e)
{
    pt_agent *a = e->agent;
    for (int32_t i = 0; a && i < a->npoints; i++)
        free_point(&a->points[i]);
    if (a)
        a->npoints = 0;
}

void pt_agent_free(pt_engine *e)
{
    pt_agent_forget_all(e);
    if (e->agent)
        free(((pt_agent *)e->agent)->points);
    free(e->agent);
    e->agent = NULL;
}

static int copy_point(agent_point *p, uint64_t addr, const uint8_t *codes, const uint32_t *lens, int32_t n)
{
    memset(p, 0, sizeof *p);
    p->addr = addr;
    p->lens = calloc((size_t)n, sizeof *p->lens);
    p->codes = calloc((size_t)n, sizeof *p->codes);
    if (!p->lens || !p->codes)
        return -ENOMEM;
    for (int32_t i = 0; i < n; i++) {
        p->codes[i] = malloc(lens[i] ? lens[i] : 1);
        if (!p->codes[i])
            return -ENOMEM;
        memcpy(p->codes[i], codes, lens[i]);
        p->lens[i] = lens[i];
        codes += lens[i];
    }
    return 0;
}

int pt_agent_install(pt_engine *e, uint64_t addr, const uint8_t *codes, const uint32_t *lens, int32_t ncond,
                     int32_t ncmd)
{
    pt_agent *a = agent_of(e);
    if (!a)
        return -ENOMEM;
    pt_agent_forget(e, addr);
    const uint8_t *at = codes;
    for (int32_t i = 0; i < ncond + ncmd; at += lens[i++])
        if (pt_ax_check(at, lens[i], a->reg_size, MAX_REGS) != 0)
            return -EINVAL;
    if (ncond + ncmd == 0)
        return 0;
    if (a->npoints == a->cap) {
        int32_t cap = a->cap ? 2 * a->cap : 8;
        agent_point *n = realloc(a->points, (size_t)cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        a->points = n;
        a->cap = cap;
    }
    agent_point *p = &a->points[a->npoints];
    int rc = copy_point(p, addr, codes, lens, ncond + ncmd);
    p->ncond = ncond;
    p->ncmd = ncmd;
    if (rc < 0) {
        free_point(p);
        return rc;
    }
    a->npoints++;
    return 0;
}

int pt_agent_set_registers(pt_engine *e, const int16_t *offsets, const uint8_t *sizes, int32_t n)
{
    pt_agent *a = agent_of(e);
    if (!a)
        return -ENOMEM;
    memset(a->reg_size, 0, sizeof a->reg_size);
    for (int32_t i = 0; i < n && i < MAX_REGS; i++) {
        int ok = sizes[i] && sizes[i] <= 8 && offsets[i] >= 0 &&
                 (size_t)offsets[i] + sizes[i] <= sizeof(struct user_regs_struct);
        a->reg_offset[i] = offsets[i];
        a->reg_size[i] = ok ? sizes[i] : 0;
    }
    return 0;
}

int pt_agent_set_output(pt_engine *e, int32_t fd)
{
    pt_agent *a = agent_of(e);
    if (!a)
        return -ENOMEM;
    a->out_fd = fd;
    return 0;
}

int pt_agent_counts(pt_engine *e, uint64_t *judged, uint64_t *passed)
{
    pt_agent *a = e->agent;
    *judged = a ? a->judged : 0;
    *passed = a ? a->passed : 0;
    return 0;
}

void pt_agent_note_pass(pt_engine *e)
{
    if (e->agent)
        ((pt_agent *)e->agent)->passed++;
}

/* ------------------------------------------------------------------------------------------------ */
/* a hit                                                                                             */

typedef struct hit {
    pt_engine *e;
    pt_agent *a;
    const struct user_regs_struct *r;
} hit;

static int hit_register(void *ctx, int32_t regnum, uint64_t *value)
{
    hit *h = ctx;
    if (regnum < 0 || regnum >= MAX_REGS || !h->a->reg_size[regnum])
        return -1;
    uint64_t v = 0;
    memcpy(&v, (const uint8_t *)h->r + h->a->reg_offset[regnum], h->a->reg_size[regnum]); /* little-endian */
    *value = v;
    return 0;
}

static int64_t hit_memory(void *ctx, uint64_t addr, uint8_t *buf, uint64_t len)
{
    hit *h = ctx;
    int64_t n = pt_read_memory(h->e, addr, buf, len);
    return n < 0 ? 0 : n;
}

/* Written at once, as gdbserver flushes after each printf; an error (stdout closed) loses the output,
 * as the Python path only logs it. */
static int hit_output(void *ctx, const uint8_t *buf, uint64_t len)
{
    hit *h = ctx;
    while (len) {
        ssize_t n = write(h->a->out_fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        buf += n;
        len -= (uint64_t)n;
    }
    return 0;
}

int pt_agent_judge(pt_engine *e, const struct user_regs_struct *r, uint64_t pc)
{
    pt_agent *a = e->agent;
    agent_point *p = point_at(a, pc);
    if (!p)
        return PT_JUDGE_NONE;
    a->judged++;
    hit h = {e, a, r};
    pt_ax_env env = {&h, hit_register, hit_memory, NULL};
    int holds = p->ncond == 0;
    for (int32_t i = 0; i < p->ncond && !holds; i++) {
        uint64_t top = 0;
        int rc = pt_ax_run(p->codes[i], p->lens[i], &env, &top);
        holds = rc != PT_AX_VALUE || top != 0; /* an error, or nothing on the stack, counts as true */
    }
    if (!holds)
        return PT_JUDGE_PASS;
    if (!p->ncmd)
        return PT_JUDGE_REPORT;
    env.output = hit_output;
    for (int32_t i = p->ncond; i < p->ncond + p->ncmd; i++) {
        uint64_t top;
        if (pt_ax_run(p->codes[i], p->lens[i], &env, &top) < 0)
            return PT_JUDGE_FAILED;
    }
    return PT_JUDGE_PASS;
}
