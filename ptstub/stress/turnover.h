/* turnover.h - the churn and idle threads of ptstub's stress programs, one source for both: the bundled
 * program (ptstub/stress/bundled.py writes this file next to its source and builds them) and the test
 * fixture fixtures/stress.c (which includes it by its path in the repository).
 *
 * --churn S: S spawner threads create and join short-lived threads (each calls hit_target() once, in the
 * includer's short_lived()) until the workers are done. --idle N: N threads sit in read() on a pipe from
 * before the workers start until everything else is joined (start_idle / end_idle).
 *
 * The includer provides, before the #include: <errno.h>, <pthread.h>, <sched.h>, <stdatomic.h>,
 * <stdio.h>, <stdlib.h>, <string.h>, <unistd.h>; `static atomic_int workers_done` (set once the workers
 * are done); and, after it, `static void *short_lived(void *rec)` (declared here), which fills in the
 * struct churned it is given.
 */
#ifndef PTSTUB_TURNOVER_H
#define PTSTUB_TURNOVER_H

#define MAX_SPAWNERS 64
#define MAX_IDLE 10000
#define SMALL_STACK (64 * 1024) /* short-lived and idle threads: thousands of them must fit */

struct churned { pid_t tid; unsigned long calls; };
static struct { pthread_t thread; struct churned *recs; size_t n, cap; } spawners[MAX_SPAWNERS];
static int nspawners, nidle;
static int idle_pipe[2];
static atomic_int idle_started, idle_eintr, idle_errno;

static void *short_lived(void *arg);

/* --churn: create and join one short-lived thread after another (at least one) until the workers are done. */
static void *spawner(void *arg)
{
    int idx = (int)(long)arg;
    pthread_attr_t attr;
    pthread_t t;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SMALL_STACK);
    do {
        if (spawners[idx].n == spawners[idx].cap) {
            spawners[idx].cap = spawners[idx].cap ? 2 * spawners[idx].cap : 256;
            spawners[idx].recs = realloc(spawners[idx].recs, spawners[idx].cap * sizeof *spawners[idx].recs);
            if (!spawners[idx].recs) abort();
        }
        if (pthread_create(&t, &attr, short_lived, &spawners[idx].recs[spawners[idx].n])) abort();
        pthread_join(t, NULL);
        spawners[idx].n++;
    } while (!atomic_load(&workers_done));
    pthread_attr_destroy(&attr);
    return NULL;
}

/* --idle: one read() of one byte on a pipe, from before the workers start until everything else ended. */
static void *idle(void *arg)
{
    char c;
    long r;
    (void)arg;
    atomic_fetch_add(&idle_started, 1);
    while ((r = read(idle_pipe[0], &c, 1)) < 0 && errno == EINTR) atomic_fetch_add(&idle_eintr, 1);
    if (r != 1) atomic_store(&idle_errno, r < 0 ? errno : EPIPE);
    return NULL;
}

static pthread_t *start_idle(void)
{
    pthread_t *threads = calloc((size_t)nidle + 1, sizeof *threads);
    pthread_attr_t attr;
    if (!threads || pipe(idle_pipe)) abort();
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SMALL_STACK);
    for (int i = 0; i < nidle; i++)
        if (pthread_create(&threads[i], &attr, idle, NULL)) abort();
    pthread_attr_destroy(&attr);
    while (atomic_load(&idle_started) < nidle) sched_yield(); /* all of them on their way into read() */
    return threads;
}

static void end_idle(pthread_t *threads)
{
    char wake[4096];
    memset(wake, 'x', sizeof wake);
    for (int left = nidle, n; left > 0; left -= n)
        if ((n = (int)write(idle_pipe[1], wake, left < (int)sizeof wake ? (size_t)left : sizeof wake)) <= 0) abort();
    for (int i = 0; i < nidle; i++) pthread_join(threads[i], NULL);
    free(threads);
}

/* The short-lived threads' count lines (`short-lived`: left out of fairness); 0 if one miscounted. */
static int print_short_lived(void)
{
    int ok = 1;
    for (int s = 0; s < nspawners; s++)
        for (size_t j = 0; j < spawners[s].n; j++) {
            ok &= spawners[s].recs[j].calls == 1;
            printf("ptstub-count: hit_target %d %lu short-lived\n", spawners[s].recs[j].tid, spawners[s].recs[j].calls);
        }
    return ok;
}

/* The idle threads' own verdict line, if there are any. */
static int print_idle_verdict(void)
{
    if (!nidle) return 1;
    if (idle_errno) printf("ptstub-syscall: idle-read error=%s\n", strerrorname_np(idle_errno));
    else if (idle_eintr) printf("ptstub-syscall: idle-read eintr=%d\n", atomic_load(&idle_eintr));
    else printf("ptstub-syscall: idle-read ok\n");
    return !idle_errno && !idle_eintr;
}

#endif
