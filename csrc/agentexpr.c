/* agentexpr.c - run GDB's agent bytecode (GDB manual, appendix "The GDB Agent Expression Mechanism",
 * "Bytecode Descriptions"; opcode values from GDB's gdbsupport/ax.def).
 *
 * The same machine as ptstub/rsp/agentexpr.py, step for step: a 64-bit two's complement stack of at
 * most 100 entries (gdbserver's STACK_MAX; reaching it is an error), C division (quotient toward zero,
 * remainder with the dividend's sign), shifts of 64 or more giving 0 (arithmetic right: the sign),
 * constants zero-extended from big-endian operands, refs zero-extended from little-endian memory, and
 * at most 100,000 instructions so that a backward `goto` cannot hang the engine.  Opcodes GDB never
 * emits for conditions (floating point, tracing, trace state variables) are errors, as in gdbserver's
 * gdb_eval_agent_expr.  The bytecode was checked when GDB sent it (parse_agent_expression: whole
 * instructions, jumps to instruction starts); the bounds are checked here again all the same.
 */
#include "agentexpr.h"

#include <stddef.h>

enum {
    OP_ADD = 0x02, OP_SUB, OP_MUL, OP_DIV_SIGNED, OP_DIV_UNSIGNED, OP_REM_SIGNED, OP_REM_UNSIGNED, OP_LSH,
    OP_RSH_SIGNED, OP_RSH_UNSIGNED,
    OP_LOG_NOT = 0x0e, OP_BIT_AND, OP_BIT_OR, OP_BIT_XOR, OP_BIT_NOT, OP_EQUAL, OP_LESS_SIGNED,
    OP_LESS_UNSIGNED, OP_EXT, OP_REF8, OP_REF16, OP_REF32, OP_REF64,
    OP_IF_GOTO = 0x20, OP_GOTO, OP_CONST8, OP_CONST16, OP_CONST32, OP_CONST64, OP_REG, OP_END, OP_DUP,
    OP_POP, OP_ZERO_EXT, OP_SWAP,
    OP_PICK = 0x32, OP_ROT, OP_PRINTF
};

#define STACK_LIMIT 100
#define STEP_LIMIT 100000

typedef struct machine {
    const uint8_t *code;
    uint32_t len;
    uint32_t pc;
    int32_t sp;
    uint64_t stack[STACK_LIMIT + 2];
    const pt_ax_env *env;
} machine;

static int pop(machine *m, uint64_t *v)
{
    if (m->sp <= 0)
        return PT_AX_E_UNDERFLOW;
    *v = m->stack[--m->sp];
    return 0;
}

static void push(machine *m, uint64_t v)
{
    m->stack[m->sp++] = v;
}

static uint64_t big_endian(const uint8_t *p, int size)
{
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v = v << 8 | p[i];
    return v;
}

static int divide(int op, uint64_t a, uint64_t b, uint64_t *out)
{
    if (b == 0)
        return PT_AX_E_DIVIDE;
    int64_t sa = (int64_t)a, sb = (int64_t)b;
    int overflow = sa == INT64_MIN && sb == -1; /* C leaves it undefined; Python's ints give these */
    switch (op) {
    case OP_DIV_SIGNED:
        *out = overflow ? a : (uint64_t)(sa / sb);
        break;
    case OP_DIV_UNSIGNED:
        *out = a / b;
        break;
    case OP_REM_SIGNED:
        *out = overflow ? 0 : (uint64_t)(sa % sb);
        break;
    default:
        *out = a % b;
    }
    return 0;
}

/* `a` is the entry below the top, `b` the top (a - b, a < b, a << b). */
static int binary(int op, uint64_t a, uint64_t b, uint64_t *out)
{
    switch (op) {
    case OP_ADD: *out = a + b; return 0;
    case OP_SUB: *out = a - b; return 0;
    case OP_MUL: *out = a * b; return 0;
    case OP_LSH: *out = b < 64 ? a << b : 0; return 0;
    case OP_RSH_SIGNED: *out = (uint64_t)((int64_t)a >> (b < 63 ? b : 63)); return 0;
    case OP_RSH_UNSIGNED: *out = b < 64 ? a >> b : 0; return 0;
    case OP_BIT_AND: *out = a & b; return 0;
    case OP_BIT_OR: *out = a | b; return 0;
    case OP_BIT_XOR: *out = a ^ b; return 0;
    case OP_EQUAL: *out = a == b; return 0;
    case OP_LESS_SIGNED: *out = (int64_t)a < (int64_t)b; return 0;
    case OP_LESS_UNSIGNED: *out = a < b; return 0;
    default: return divide(op, a, b, out);
    }
}

static int is_binary(int op)
{
    return (op >= OP_ADD && op <= OP_RSH_UNSIGNED) || (op >= OP_BIT_AND && op <= OP_BIT_XOR) ||
           (op >= OP_EQUAL && op <= OP_LESS_UNSIGNED);
}

static int operand(machine *m, int size)
{
    return m->pc + (uint32_t)size <= m->len ? 0 : PT_AX_E_CODE;
}

static int ref(machine *m, int size)
{
    uint64_t addr;
    int rc = pop(m, &addr);
    if (rc < 0)
        return rc;
    uint8_t buf[8];
    if (m->env->read_memory(m->env->ctx, addr, buf, (uint64_t)size) != size)
        return PT_AX_E_MEMORY;
    uint64_t v = 0;
    for (int i = size - 1; i >= 0; i--)
        v = v << 8 | buf[i];
    push(m, v);
    return 0;
}

static int extend(machine *m, int sign)
{
    int rc = operand(m, 1);
    uint64_t v;
    if (rc < 0 || (rc = pop(m, &v)) < 0)
        return rc;
    int bits = m->code[m->pc++];
    if (bits > 0 && bits < 64) {
        v &= (1ull << bits) - 1;
        if (sign && (v >> (bits - 1)))
            v |= ~((1ull << bits) - 1);
    }
    push(m, v);
    return 0;
}

/* printf NARGS LEN16 FORMAT[LEN]: the function and the channel GDB pushed last are popped (unused, as
 * in gdbserver), then the arguments, the first one on top. */
static int run_printf(machine *m)
{
    if (!m->env->output)
        return PT_AX_E_OPCODE; /* a condition has nowhere to print */
    int rc = operand(m, 3);
    if (rc < 0)
        return rc;
    int nargs = m->code[m->pc];
    uint32_t flen = (uint32_t)big_endian(m->code + m->pc + 1, 2);
    if ((rc = operand(m, 3 + (int)flen)) < 0)
        return rc;
    uint64_t ignored, args[256];
    if ((rc = pop(m, &ignored)) < 0 || (rc = pop(m, &ignored)) < 0)
        return rc;
    for (int i = 0; i < nargs; i++)
        if ((rc = pop(m, &args[i])) < 0)
            return rc;
    rc = pt_ax_printf(m->code + m->pc + 3, flen, args, nargs, m->env);
    m->pc += 3 + flen;
    return rc;
}

static int stack_op(machine *m, int op)
{
    uint64_t a, b, c;
    int rc = 0;
    switch (op) {
    case OP_LOG_NOT:
    case OP_BIT_NOT:
        if ((rc = pop(m, &a)) == 0)
            push(m, op == OP_LOG_NOT ? !a : ~a);
        return rc;
    case OP_DUP:
        if (m->sp < 1)
            return PT_AX_E_UNDERFLOW;
        push(m, m->stack[m->sp - 1]);
        return 0;
    case OP_POP:
        return pop(m, &a);
    case OP_SWAP:
        if ((rc = pop(m, &b)) < 0 || (rc = pop(m, &a)) < 0)
            return rc;
        push(m, b);
        push(m, a);
        return 0;
    case OP_PICK: /* pick N: copy the entry N below the top (pick 0 is dup) */
        if ((rc = operand(m, 1)) < 0)
            return rc;
        a = m->code[m->pc++];
        if ((int64_t)a >= m->sp)
            return PT_AX_E_UNDERFLOW;
        push(m, m->stack[m->sp - 1 - (int32_t)a]);
        return 0;
    case OP_ROT: /* a b c => c a b */
        if ((rc = pop(m, &c)) < 0 || (rc = pop(m, &b)) < 0 || (rc = pop(m, &a)) < 0)
            return rc;
        push(m, c);
        push(m, a);
        push(m, b);
        return 0;
    default:
        return PT_AX_E_OPCODE;
    }
}

static int flow_op(machine *m, int op)
{
    int rc = operand(m, 2);
    if (rc < 0)
        return rc;
    uint32_t target = (uint32_t)big_endian(m->code + m->pc, 2);
    if (op == OP_GOTO) {
        m->pc = target;
        return 0;
    }
    if (op == OP_REG) {
        uint64_t v;
        if (m->env->read_register(m->env->ctx, (int32_t)target, &v) < 0)
            return PT_AX_E_REGISTER;
        push(m, v);
        m->pc += 2;
        return 0;
    }
    uint64_t cond;
    if ((rc = pop(m, &cond)) < 0)
        return rc;
    m->pc = cond ? target : m->pc + 2;
    return 0;
}

static int step(machine *m, int op)
{
    uint64_t a, b, v;
    int rc;
    if (is_binary(op)) {
        if ((rc = pop(m, &b)) < 0 || (rc = pop(m, &a)) < 0 || (rc = binary(op, a, b, &v)) < 0)
            return rc;
        push(m, v);
        return 0;
    }
    if (op >= OP_CONST8 && op <= OP_CONST64) {
        int size = 1 << (op - OP_CONST8);
        if ((rc = operand(m, size)) < 0)
            return rc;
        push(m, big_endian(m->code + m->pc, size));
        m->pc += (uint32_t)size;
        return 0;
    }
    if (op >= OP_REF8 && op <= OP_REF64)
        return ref(m, 1 << (op - OP_REF8));
    if (op == OP_EXT || op == OP_ZERO_EXT)
        return extend(m, op == OP_EXT);
    if (op == OP_IF_GOTO || op == OP_GOTO || op == OP_REG)
        return flow_op(m, op);
    if (op == OP_PRINTF)
        return run_printf(m);
    return stack_op(m, op);
}

int pt_ax_run(const uint8_t *code, uint32_t len, const pt_ax_env *env, uint64_t *top)
{
    machine m = {.code = code, .len = len, .pc = 0, .sp = 0, .env = env};
    for (int n = 0; n < STEP_LIMIT; n++) {
        if (m.pc >= m.len)
            return PT_AX_E_CODE;
        int op = m.code[m.pc++];
        if (op == OP_END) {
            if (!m.sp)
                return PT_AX_EMPTY;
            *top = m.stack[m.sp - 1];
            return PT_AX_VALUE;
        }
        int rc = step(&m, op);
        if (rc < 0)
            return rc;
        if (m.sp >= STACK_LIMIT)
            return PT_AX_E_OVERFLOW;
    }
    return PT_AX_E_LOOP;
}

/* ------------------------------------------------------------------------------------------------ */
/* checking at insertion: can C run it as Python does                                               */

int pt_ax_format_check(const uint8_t *format, uint32_t len); /* agentprintf.c */

static int operand_size(int op)
{
    switch (op) {
    case 0x0d: case OP_EXT: case OP_ZERO_EXT: case OP_PICK: case OP_CONST8: /* trace_quick has one */
        return 1;
    case OP_CONST16: case OP_IF_GOTO: case OP_GOTO: case OP_REG: case 0x2c: case 0x2d: case 0x2e: case 0x30:
        return 2; /* const16, jumps, reg, getv, setv, tracev, trace16 */
    case OP_CONST32:
        return 4;
    case OP_CONST64:
        return 8;
    default:
        return 0;
    }
}

int pt_ax_check(const uint8_t *code, uint32_t len, const uint8_t *reg_sizes, int32_t nregs)
{
    uint32_t pc = 0;
    while (pc < len) {
        int op = code[pc];
        if (op == OP_PRINTF) {
            if (pc + 4 > len)
                return PT_AX_E_CODE;
            uint32_t flen = (uint32_t)big_endian(code + pc + 2, 2);
            if (pc + 4 + flen > len)
                return PT_AX_E_CODE;
            if (pt_ax_format_check(code + pc + 4, flen) == PT_AX_E_UNSUPPORTED)
                return PT_AX_E_UNSUPPORTED;
            pc += 4 + flen;
            continue;
        }
        int size = operand_size(op);
        if (pc + 1 + (uint32_t)size > len)
            return PT_AX_E_CODE;
        if (op == OP_REG) {
            uint32_t reg = (uint32_t)big_endian(code + pc + 1, 2);
            if ((int64_t)reg >= nregs || !reg_sizes[reg])
                return PT_AX_E_UNSUPPORTED;
        }
        pc += 1 + (uint32_t)size;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* buffers, for tests                                                                               */

typedef struct buffers {
    const uint64_t *regs;
    int32_t nregs;
    uint64_t reg_valid;
    uint64_t mem_base;
    const uint8_t *mem;
    uint64_t mem_len;
    uint8_t *out;
    uint64_t out_cap;
    uint64_t out_len;
} buffers;

static int buffer_register(void *ctx, int32_t regnum, uint64_t *value)
{
    buffers *b = ctx;
    if (regnum < 0 || regnum >= b->nregs || regnum >= 64 || !((b->reg_valid >> regnum) & 1))
        return -1;
    *value = b->regs[regnum];
    return 0;
}

static int64_t buffer_memory(void *ctx, uint64_t addr, uint8_t *buf, uint64_t len)
{
    buffers *b = ctx;
    if (addr < b->mem_base || addr - b->mem_base >= b->mem_len)
        return 0;
    uint64_t off = addr - b->mem_base, n = b->mem_len - off < len ? b->mem_len - off : len;
    for (uint64_t i = 0; i < n; i++)
        buf[i] = b->mem[off + i];
    return (int64_t)n;
}

static int buffer_output(void *ctx, const uint8_t *data, uint64_t len)
{
    buffers *b = ctx;
    if (b->out_cap - b->out_len < len)
        return PT_AX_E_OUTPUT;
    for (uint64_t i = 0; i < len; i++)
        b->out[b->out_len + i] = data[i];
    b->out_len += len;
    return 0;
}

int pt_ax_run_buffers(const uint8_t *code, uint32_t len, int is_command, const uint64_t *regs, int32_t nregs,
                      uint64_t reg_valid, uint64_t mem_base, const uint8_t *mem, uint64_t mem_len, uint8_t *out,
                      uint64_t out_cap, uint64_t *out_len, uint64_t *top)
{
    buffers b = {regs, nregs, reg_valid, mem_base, mem, mem_len, out, out_cap, 0};
    pt_ax_env env = {&b, buffer_register, buffer_memory, is_command ? buffer_output : NULL};
    *top = 0;
    int rc = pt_ax_run(code, len, &env, top);
    *out_len = b.out_len;
    return rc;
}
