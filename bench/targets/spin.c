/* spin.c - private stand-in for fixtures/spin.c, used by bench/ only when the fixture is missing.
 * spin --threads N [--busy K] [--stdin]
 * Same interface as the fixture: N worker threads besides the main thread, K of them busy-looping and the
 * rest blocked in pause(); the main thread blocks in read(0).  Prints "ready" once every worker runs; exits
 * at stdin EOF (always: --stdin is accepted for compatibility). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile int g_started;
static volatile int g_stop;

static void *busy(void *arg)
{
    __atomic_fetch_add(&g_started, 1, __ATOMIC_SEQ_CST);
    volatile unsigned long n = 0;
    while (!g_stop)
        n++;
    return arg;
}

static void *blocked(void *arg)
{
    __atomic_fetch_add(&g_started, 1, __ATOMIC_SEQ_CST);
    for (;;)
        pause();
    return arg;
}

int main(int argc, char **argv)
{
    int nthreads = 1, nbusy = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--busy") && i + 1 < argc)
            nbusy = atoi(argv[++i]);
    }
    if (nbusy > nthreads)
        nbusy = nthreads;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 64 * 1024);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    for (int i = 0; i < nthreads; i++) {
        pthread_t t;
        if (pthread_create(&t, &at, i < nbusy ? busy : blocked, NULL)) {
            perror("pthread_create");
            return 2;
        }
    }
    while (__atomic_load_n(&g_started, __ATOMIC_SEQ_CST) < nthreads)
        usleep(100);
    printf("ready\n");
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof buf) > 0)
        ;
    g_stop = 1;
    return 0;
}
