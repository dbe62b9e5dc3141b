/* stress.c - private stand-in for fixtures/stress.c, used by bench/ only when the fixture is missing.
 * stress --threads N --calls M [--syscall none]
 * N worker threads each call hit_target() M times; the main thread joins them and prints the total. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long g_calls = 1000;
static volatile long g_total;

__attribute__((noinline)) void hit_target(long i)
{
    __atomic_fetch_add(&g_total, 1, __ATOMIC_RELAXED);
    __asm__ volatile("" ::"r"(i) : "memory");
}

static void *worker(void *arg)
{
    for (long i = 0; i < g_calls; i++)
        hit_target(i);
    return arg;
}

int main(int argc, char **argv)
{
    int nthreads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--calls") && i + 1 < argc)
            g_calls = atol(argv[++i]);
        else if (!strcmp(argv[i], "--syscall") && i + 1 < argc)
            ++i; /* only "none" is supported by this stand-in */
    }
    pthread_t *t = calloc(nthreads, sizeof *t);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&t[i], NULL, worker, NULL))
            return 2;
    for (int i = 0; i < nthreads; i++)
        pthread_join(t[i], NULL);
    printf("total %ld\n", g_total);
    return 0;
}
