/* agentexpr.h - GDB agent expressions (target-side breakpoint conditions and dprintf commands) in C.
 *
 * The evaluator of ptstub/rsp/agentexpr.py and the printf of ptstub/rsp/agentprintf.py, written again
 * in C so that a hit whose condition is false, or an agent dprintf, is handled where the hit is seen,
 * in the engine's wait loop (docs/design-notes.md, "Conditions and dprintf in the engine").  The
 * Python modules stay the reference: tests/unit/test_agentexpr_c.py runs both on the same bytecode.
 *
 * Pure: registers, memory and printf output come through the callbacks of pt_ax_env; nothing here
 * calls ptrace.  Values are GDB's 64-bit stack entries; target memory is little-endian (x86-64).
 * The part between the CDEF markers is handed to cffi verbatim (csrc/build_ptcore.py).
 */
#ifndef PTSTUB_AGENTEXPR_H
#define PTSTUB_AGENTEXPR_H
#include <stdint.h>

/* CDEF-BEGIN */
/* Results of pt_ax_run: >= 0 success, < 0 the evaluation failed (a condition then counts as true). */
enum {
    PT_AX_EMPTY = 0,            /* `end` with an empty stack (a dprintf's bytecode ends so) */
    PT_AX_VALUE = 1,            /* `end` with a value on top (*top) */
    PT_AX_E_UNDERFLOW = -1,
    PT_AX_E_OVERFLOW = -2,      /* 100 entries, gdbserver's STACK_MAX */
    PT_AX_E_DIVIDE = -3,        /* division or remainder by zero */
    PT_AX_E_MEMORY = -4,        /* a ref or a %s read less than it needed */
    PT_AX_E_REGISTER = -5,      /* a register the caller cannot give */
    PT_AX_E_OPCODE = -6,        /* floating point, tracing, trace variables, or printf in a condition */
    PT_AX_E_CODE = -7,          /* ran past the end of the bytecode, or a cut instruction */
    PT_AX_E_LOOP = -8,          /* no `end` after 100,000 instructions */
    PT_AX_E_FORMAT = -9,        /* printf: a format agentprintf rejects, or the wrong argument count */
    PT_AX_E_OUTPUT = -10,       /* printf: no room for the output */
    PT_AX_E_UNSUPPORTED = -11   /* pt_ax_check: valid, but only the Python evaluator runs it */
};

/* Runs one bytecode string to its `end`, for the buffers of a test: registers regs[0..nregs) (GDB
 * numbers; the bit n of reg_valid says register n can be read), memory [mem_base, mem_base + mem_len)
 * and nothing else, printf output (a command: is_command) into out[0..out_cap), its length in
 * *out_len.  Returns a PT_AX_* result, the value on top in *top. */
int pt_ax_run_buffers(const uint8_t *code, uint32_t len, int is_command, const uint64_t *regs, int32_t nregs,
                      uint64_t reg_valid, uint64_t mem_base, const uint8_t *mem, uint64_t mem_len, uint8_t *out,
                      uint64_t out_cap, uint64_t *out_len, uint64_t *top);
/* 0 when the C evaluator runs this bytecode exactly as the Python one (registers: reg_sizes[n] != 0
 * for those it can read, n < nregs), PT_AX_E_UNSUPPORTED otherwise (a printf width too large to
 * format, a register it is not given).  The bytecode was checked by parse_agent_expression. */
int pt_ax_check(const uint8_t *code, uint32_t len, const uint8_t *reg_sizes, int32_t nregs);
/* CDEF-END */

/* What an evaluation reads and where a command prints. */
typedef struct pt_ax_env {
    void *ctx;
    /* register `regnum` (GDB's number) as an unsigned value: 0, or < 0 when it cannot be read */
    int (*read_register)(void *ctx, int32_t regnum, uint64_t *value);
    /* bytes read at addr (fewer than len: the rest is not readable), or < 0 */
    int64_t (*read_memory)(void *ctx, uint64_t addr, uint8_t *buf, uint64_t len);
    /* one printf's whole output; NULL in a condition (printf is then an error) */
    int (*output)(void *ctx, const uint8_t *buf, uint64_t len);
} pt_ax_env;

int pt_ax_run(const uint8_t *code, uint32_t len, const pt_ax_env *env, uint64_t *top);
int pt_ax_printf(const uint8_t *format, uint32_t len, const uint64_t *args, int32_t nargs, const pt_ax_env *env);

#endif
