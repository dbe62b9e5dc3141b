"""The bundled stress program: C source shipped inside the package, built with the system's cc on demand.

`ptstub stress --stub CMD` (and `ptstub stress` without PROG) runs it: `--threads N` workers call
`hit_target()` `--calls M` times each, a counter thread increments `frozen_counter` as fast as it can
until they are done, and the main thread sits in ONE long blocking call of `--syscall KIND` meanwhile
(docs/kernel-facts.md §3's list). `--churn S` adds S spawner threads that create and join short-lived
threads (each calls `hit_target()` once) until the workers are done; `--idle N` adds N threads blocked
in `read()` on a pipe for the whole run, woken at the end. At exit it prints the protocol lines of
`protocol.py` (short-lived threads' counts marked `short-lived`), and exits 1 if a count is wrong or a
call saw EINTR / returned early. Built once per source version into the user cache directory (-O0 -g,
so GDB's `break hit_target` stops once per call).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources

from ptstub.stress.model import StressSetupError

SYSCALL_KINDS = (
    "nanosleep",
    "clock_nanosleep",
    "read",
    "futex",
    "poll",
    "poll-timeout",
    "select",
    "accept",
    "epoll_wait",
    "sigtimedwait",
    "recv-timeout",
    "none",
)
BREAK = "hit_target"
MAX_CHURN = 64  # spawner threads (MAX_SPAWNERS in the C source)
MAX_IDLE = 10_000  # idle threads (MAX_IDLE)
FROZEN = "frozen_counter"

SOURCE = r"""
/* ptstub's bundled stress program (ptstub/stress/bundled.py). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define LONG_MS 120000 /* the timeout of wake-up kinds: must never expire */

volatile unsigned long frozen_counter;
static volatile int sink;
__attribute__((noinline)) void hit_target(int i) { sink += i; }

enum { NANOSLEEP, CLOCK_NANOSLEEP, READ, FUTEX, POLL, POLL_TIMEOUT, SELECT, ACCEPT, EPOLL_WAIT, SIGTIMEDWAIT,
       RECV_TIMEOUT, NONE, NKINDS };
static const char *kinds[NKINDS] = {"nanosleep", "clock_nanosleep", "read", "futex", "poll", "poll-timeout",
    "select", "accept", "epoll_wait", "sigtimedwait", "recv-timeout", "none"};
static int kind = NANOSLEEP, nthreads = 4, ncalls = 500, duration_ms = 500;
static int pipefd[2], sockfd[2], listen_fd, epfd;
static struct sockaddr_in addr;
static atomic_int remaining, futex_word, workers_done;
static pthread_t main_thread;
static struct { pid_t tid; unsigned long calls; } result[MAX_THREADS];
#include "turnover.h" /* --churn and --idle, written next to this file (TURNOVER) */

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

static void wake_main(void)
{
    int one = 1, fd;
    switch (kind) {
    case READ: case POLL: case POLL_TIMEOUT: case SELECT: case EPOLL_WAIT:
        if (write(pipefd[1], "x", 1) != 1) abort();
        break;
    case FUTEX: atomic_store(&futex_word, 1);
        syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        break;
    case ACCEPT: fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr)) abort();
        close(fd); break;
    case SIGTIMEDWAIT: pthread_kill(main_thread, SIGUSR1); break;
    case RECV_TIMEOUT: if (send(sockfd[1], &one, 1, 0) != 1) abort(); break;
    }
}

static void *worker(void *arg)
{
    int idx = (int)(long)arg;
    unsigned long calls = 0;
    for (int i = 0; i < ncalls; i++) { hit_target(i); calls++; }
    result[idx].tid = (pid_t)syscall(SYS_gettid);
    result[idx].calls = calls;
    if (atomic_fetch_sub(&remaining, 1) == 1) { atomic_store(&workers_done, 1); wake_main(); }
    return NULL;
}

static void *counter(void *arg) { (void)arg; while (!atomic_load(&workers_done)) frozen_counter++; return NULL; }

static void *short_lived(void *arg)
{
    struct churned *rec = arg;
    hit_target(-1);
    rec->calls = 1;
    rec->tid = (pid_t)syscall(SYS_gettid);
    return NULL;
}

/* One call of the long blocking syscall: 0 done, 1 call it again (woken early), -1 EINTR. */
static int one_call(long deadline, int *err)
{
    long left = deadline - now_ms(), r = 0;
    struct timespec ts = {LONG_MS / 1000, 0}, abs = {deadline / 1000, (deadline % 1000) * 1000000L};
    struct pollfd pfd = {pipefd[0], POLLIN, 0};
    struct epoll_event ev;
    fd_set rfds;
    sigset_t set;
    char c;
    if (left < 0) left = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    FD_ZERO(&rfds);
    FD_SET(pipefd[0], &rfds);
    switch (kind) {
    case NANOSLEEP: ts = (struct timespec){left / 1000, (left % 1000) * 1000000L}; r = nanosleep(&ts, NULL); break;
    case CLOCK_NANOSLEEP: r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
        if (r) errno = (int)r, r = -1; /* it returns the error number itself */
        break;
    case READ: r = read(pipefd[0], &c, 1); if (r == 0) errno = EPIPE, r = -1; break;
    case FUTEX: if (atomic_load(&futex_word)) return 0;
        r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        if (r == 0 || (r < 0 && errno == EAGAIN)) return 1;
        break;
    case POLL: case POLL_TIMEOUT: r = poll(&pfd, 1, kind == POLL ? -1 : LONG_MS);
        if (r == 0) errno = ETIMEDOUT, r = -1;
        break;
    case SELECT: r = select(pipefd[0] + 1, &rfds, NULL, NULL, NULL); break;
    case ACCEPT: r = accept(listen_fd, NULL, NULL); if (r >= 0) close((int)r); break;
    case EPOLL_WAIT: r = epoll_wait(epfd, &ev, 1, -1); break;
    case SIGTIMEDWAIT: r = sigtimedwait(&set, NULL, &ts); break;
    case RECV_TIMEOUT: r = recv(sockfd[0], &c, 1, 0); if (r == 0) errno = EPIPE, r = -1; break;
    case NONE: while (!atomic_load(&workers_done)) sched_yield(); return 0;
    }
    if (r < 0 && errno == EINTR) return -1;
    if (r < 0) *err = errno;
    return 0;
}

static void setup(void)
{
    struct timeval tmo = {LONG_MS / 1000, 0};
    struct epoll_event ev = {.events = EPOLLIN};
    socklen_t len = sizeof addr;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread: sigtimedwait takes it */
    if (pipe(pipefd) || socketpair(AF_UNIX, SOCK_STREAM, 0, sockfd) || (epfd = epoll_create1(0)) < 0) abort();
    setsockopt(sockfd[0], SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, pipefd[0], &ev)) abort();
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listen_fd, (struct sockaddr *)&addr, len) || listen(listen_fd, 4) ||
        getsockname(listen_fd, (struct sockaddr *)&addr, &len)) abort();
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--threads N] [--calls M] [--syscall KIND] [--duration-ms D] [--churn S] [--idle N]\n",
            prog);
    exit(2);
}

int main(int argc, char **argv)
{
    pthread_t workers[MAX_THREADS], counter_thread, *idlers;
    int err = 0, eintr = 0, ok = 1, st;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage(argv[0]);
        if (!strcmp(a, "--threads")) nthreads = atoi(v);
        else if (!strcmp(a, "--calls")) ncalls = atoi(v);
        else if (!strcmp(a, "--duration-ms")) duration_ms = atoi(v);
        else if (!strcmp(a, "--churn")) nspawners = atoi(v);
        else if (!strcmp(a, "--idle")) nidle = atoi(v);
        else if (!strcmp(a, "--syscall")) { for (kind = 0; kind < NKINDS && strcmp(kinds[kind], v); kind++); }
        else usage(argv[0]);
    }
    if (kind == NKINDS || nthreads < 1 || nthreads > MAX_THREADS || ncalls < 0 || nspawners < 0 ||
        nspawners > MAX_SPAWNERS || nidle < 0 || nidle > MAX_IDLE)
        usage(argv[0]);
    setup();
    main_thread = pthread_self();
    atomic_store(&remaining, nthreads);
    idlers = start_idle();
    pthread_create(&counter_thread, NULL, counter, NULL);
    for (long i = 0; i < nthreads; i++) pthread_create(&workers[i], NULL, worker, (void *)i);
    for (long i = 0; i < nspawners; i++) pthread_create(&spawners[i].thread, NULL, spawner, (void *)i);
    long start = now_ms(), deadline = start + duration_ms;
    while ((st = one_call(deadline, &err)) != 0) eintr += st < 0;
    long elapsed = now_ms() - start;
    for (int i = 0; i < nthreads; i++) pthread_join(workers[i], NULL);
    pthread_join(counter_thread, NULL);
    for (int i = 0; i < nspawners; i++) pthread_join(spawners[i].thread, NULL);
    end_idle(idlers);
    for (int i = 0; i < nthreads; i++) {
        ok &= result[i].calls == (unsigned long)ncalls;
        printf("ptstub-count: hit_target %d %lu\n", result[i].tid, result[i].calls);
    }
    ok &= print_short_lived();
    int timed = kind == NANOSLEEP || kind == CLOCK_NANOSLEEP;
    if (err) printf("ptstub-syscall: %s error=%s\n", kinds[kind], strerrorname_np(err));
    else if (eintr) printf("ptstub-syscall: %s eintr=%d\n", kinds[kind], eintr);
    else if (timed && elapsed < duration_ms) printf("ptstub-syscall: %s short=%ld\n", kinds[kind], elapsed);
    else printf("ptstub-syscall: %s ok\n", kinds[kind]);
    ok &= print_idle_verdict();
    printf("ptstub-frozen: frozen_counter\n");
    ok &= !err && !eintr && !(timed && elapsed < duration_ms);
    return ok ? 0 : 1;
}
"""


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "ptstub")


def turnover_source() -> str:
    """turnover.h: the churn and idle threads, shared with fixtures/stress.c (package data)."""
    return resources.files("ptstub.stress").joinpath("turnover.h").read_text()


def build(directory: str | None = None) -> str:
    """Path of the bundled program, compiling it first if this version is not built yet."""
    turnover = turnover_source()
    digest = hashlib.sha256((SOURCE + turnover).encode()).hexdigest()[:12]
    directory = directory or cache_dir()
    path = os.path.join(directory, f"stress-{digest}")
    if os.access(path, os.X_OK):
        return path
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise StressSetupError("the bundled stress program needs a C compiler (cc) to be built")
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as work:
        source = os.path.join(work, "stress.c")
        with open(source, "w") as f:
            f.write(SOURCE)
        with open(os.path.join(work, "turnover.h"), "w") as f:
            f.write(turnover)
        binary = os.path.join(work, "stress")
        cmd = [compiler, "-O0", "-g", "-pthread", "-o", binary, source]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            first = (done.stderr.strip().splitlines() or ["no output"])[0]
            raise StressSetupError(f"cannot build the bundled stress program: {first}")
        os.replace(binary, path)  # atomic: a concurrent build of the same version is harmless
    return path


def argv(
    threads: int = 4,
    calls: int = 500,
    syscall: str = "nanosleep",
    duration_ms: int = 500,
    churn: int = 0,
    idle: int = 0,
) -> tuple[str, ...]:
    """The command line of the bundled program (built if needed); `--churn`/`--idle` only when asked for."""
    if syscall not in SYSCALL_KINDS:
        raise StressSetupError(f"unknown syscall kind {syscall!r} (one of: {', '.join(SYSCALL_KINDS)})")
    extra = (*(("--churn", str(churn)) if churn else ()), *(("--idle", str(idle)) if idle else ()))
    return (
        build(),
        "--threads",
        str(threads),
        "--calls",
        str(calls),
        "--syscall",
        syscall,
        "--duration-ms",
        str(duration_ms),
        *extra,
    )
