/* emulate_load.c - carry out a plain `mov` load under a breakpoint in the tracer (no step, no stop).
 *
 * A breakpoint GDB places after a function's prologue (`break f`) usually sits on a load: an argument
 * from the frame (`mov -0x14(%rbp),%eax`) or a global (`mov 0x2f0e(%rip),%edx`).  When such a hit is
 * to be passed (a false condition, an agent dprintf), the tracer reads the operand and writes the
 * register itself, as emulate_over in ptcore.c does for pushes, so no other thread need be held while
 * an int3 is lifted.  Only opcode 8B (MOV r32/r64, r/m) with an optional REX prefix and a memory
 * operand addressed by a base register (with or without a displacement or an index) or by rip; a
 * 32-bit load zero-extends into the 64-bit register (Intel SDM vol. 1, 3.4.1.1).  The operand must be
 * naturally aligned: such a load is one access for the CPU, and the kernel's copy of at most 8 aligned
 * bytes reads them in one move too, so a racing writer is seen before or after, never torn.  Anything
 * else, an unreadable operand included (the real instruction then faults as it should), is stepped.
 */
#include "ptcore_internal.h"
#include "agenthit.h"

static unsigned long long *gpr_slot(struct user_regs_struct *r, int n)
{
    unsigned long long *gpr[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp, &r->rsi, &r->rdi,
                                   &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
    return gpr[n];
}

static int64_t disp(const uint8_t *p, int size)
{
    if (size == 1)
        return (int8_t)p[0];
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The operand's address and the instruction's length, from its ModRM byte at insn[at]; 0 when the
 * form is not one of ours. */
static int operand_address(const uint8_t *insn, int at, int rex, struct user_regs_struct *r, uint64_t *addr)
{
    int modrm = insn[at], mod = modrm >> 6, rm = modrm & 7, pos = at + 1;
    if (mod == 3)
        return 0; /* register to register: rare under a breakpoint, stepped */
    if (mod == 0 && rm == 5) { /* rip-relative: from the end of the instruction */
        *addr = r->rip + (uint64_t)(pos + 4) + (uint64_t)disp(insn + pos, 4);
        return pos + 4;
    }
    uint64_t base;
    if (rm == 4) { /* SIB */
        int sib = insn[pos++], index = ((sib >> 3) & 7) | (rex & 2 ? 8 : 0), b = sib & 7;
        if (b == 5 && mod == 0)
            return 0; /* no base register */
        base = *gpr_slot(r, b | (rex & 1 ? 8 : 0));
        if (index != 4)
            base += *gpr_slot(r, index) << (sib >> 6);
    } else {
        base = *gpr_slot(r, rm | (rex & 1 ? 8 : 0));
    }
    int size = mod == 1 ? 1 : mod == 2 ? 4 : 0;
    *addr = base + (uint64_t)(size ? disp(insn + pos, size) : 0);
    return pos + size;
}

int pt_emulate_load(pt_engine *e, int32_t tid, const struct user_regs_struct *regs)
{
    uint8_t insn[16];
    if (e->dr7 || regs->cs != 0x33 || pt_read_memory(e, regs->rip, insn, sizeof insn) != sizeof insn)
        return 0; /* a debug register could watch the read; 32-bit code decodes otherwise */
    int rex = (insn[0] & 0xf0) == 0x40 ? insn[0] : 0, at = rex ? 1 : 0;
    if (insn[at] != 0x8b)
        return 0;
    struct user_regs_struct r = *regs;
    uint64_t addr, value = 0;
    int len = operand_address(insn, at + 1, rex, &r, &addr);
    int size = rex & 8 ? 8 : 4;
    if (!len || addr % (uint64_t)size || pt_read_memory(e, addr, (uint8_t *)&value, (uint64_t)size) != size)
        return 0;
    *gpr_slot(&r, ((insn[at + 1] >> 3) & 7) | (rex & 4 ? 8 : 0)) = value; /* little-endian, zero-extended */
    r.rip += (unsigned long long)len;
    return pt_ptrace(e, PTRACE_SETREGS, tid, 0, &r) == 0;
}
