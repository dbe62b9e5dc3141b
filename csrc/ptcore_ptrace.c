/* ptcore_ptrace.c - the ptrace log: a ring of the engine's last ptrace calls (request, tid, result,
 * errno), filled by pt_ptrace() while enabled and emptied by Python (the `ptstub.ptrace` log channel). */
#include "ptcore_internal.h"

struct pt_ptrace_log {
    uint32_t capacity;
    uint64_t written; /* records ever written; the ring holds the last `capacity` of them */
    uint64_t taken;   /* records ever taken or dropped */
    pt_ptrace_record ring[];
};

int pt_ptrace_log_enable(pt_engine *e, int32_t capacity)
{
    if (capacity <= 0)
        return -EINVAL;
    pt_ptrace_log_disable(e);
    pt_ptrace_log *log = calloc(1, sizeof *log + (size_t)capacity * sizeof(pt_ptrace_record));
    if (!log)
        return -ENOMEM;
    log->capacity = (uint32_t)capacity;
    e->ptrace_log = log;
    return 0;
}

void pt_ptrace_log_disable(pt_engine *e)
{
    free(e->ptrace_log);
    e->ptrace_log = NULL;
}

/* Keeps errno: callers read it after pt_ptrace() returns. */
void ptrace_log_record(pt_engine *e, int request, int32_t tid, void *addr, void *data, long result)
{
    int saved = errno;
    pt_ptrace_log *log = e->ptrace_log;
    pt_ptrace_record *r = &log->ring[log->written % log->capacity];
    *r = (pt_ptrace_record){.request = request,
                            .tid = tid,
                            .result = result,
                            .err = result == -1 ? saved : 0,
                            .addr = (uint64_t)(uintptr_t)addr,
                            .data = (uint64_t)(uintptr_t)data};
    log->written++;
    errno = saved;
}

int pt_ptrace_log_take(pt_engine *e, pt_ptrace_record *out, int32_t max, uint64_t *dropped)
{
    pt_ptrace_log *log = e->ptrace_log;
    if (!log || max <= 0)
        return 0;
    if (log->written - log->taken > log->capacity) { /* overwritten before anyone took them */
        *dropped += log->written - log->capacity - log->taken;
        log->taken = log->written - log->capacity;
    }
    int n = 0;
    for (; n < max && log->taken < log->written; n++, log->taken++)
        out[n] = log->ring[log->taken % log->capacity];
    return n;
}
