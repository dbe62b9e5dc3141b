/* agenthit.h - target-side conditions and commands installed in an engine, judged at a hit.
 *
 * GDB sends a breakpoint's conditions and agent-dprintf commands as bytecode with Z0; the session
 * installs here the ones the C evaluator runs exactly as the Python one (pt_ax_check), and the engine
 * judges a hit on such a breakpoint where it sees it (docs/design-notes.md, "Conditions and dprintf
 * in the engine").  An entry lives as long as the engine's breakpoint at its address: removing the
 * breakpoint, an exec and freeing the engine drop it.  The part between the CDEF markers is handed to
 * cffi verbatim.
 */
#ifndef PTSTUB_AGENTHIT_H
#define PTSTUB_AGENTHIT_H
#include <stdint.h>
#include <sys/user.h>

#include "ptcore.h"

/* CDEF-BEGIN */
/* Verdicts of a hit judged in the engine; a hit reported with PT_EV_BREAKPOINT carries its verdict
 * in ev_data (0: nothing was judged, the session evaluates as before). */
enum {
    PT_JUDGE_NONE = 0,   /* no condition or command installed here: a plain hit */
    PT_JUDGE_REPORT = 1, /* a condition held (or failed, which counts as true) and there are no commands */
    PT_JUDGE_PASS = 2,   /* every condition false, or the commands ran: nobody hears of the hit */
    PT_JUDGE_FAILED = 3  /* a command failed: reported so that the session tells the user once */
};

/* Install the conditions (ncond) and then the commands (ncmd) of the breakpoint at addr, their
 * bytecodes one after the other in codes, lens[i] bytes each; they replace what was there, none
 * (ncond + ncmd == 0) removes the entry.  -EINVAL when one fails pt_ax_check: nothing is installed. */
int pt_agent_install(pt_engine *e, uint64_t addr, const uint8_t *codes, const uint32_t *lens, int32_t ncond,
                     int32_t ncmd);
/* Where GDB's register numbers are in the user_regs_struct (size 0: not there, e.g. vector registers). */
int pt_agent_set_registers(pt_engine *e, const int16_t *offsets, const uint8_t *sizes, int32_t n);
/* Where a command's printf writes (default 1: the program's stdout, which is ptstub's). */
int pt_agent_set_output(pt_engine *e, int32_t fd);
/* How many hits the engine judged (all of them) and passed without a report, since it was made. */
int pt_agent_counts(pt_engine *e, uint64_t *judged, uint64_t *passed);
/* CDEF-END */

/* The engine's side (csrc/ptcore_*.c), hidden as ptcore_internal.h's declarations. */
#pragma GCC visibility push(hidden)
int pt_agent_judge(pt_engine *e, const struct user_regs_struct *r, uint64_t pc);
void pt_agent_note_pass(pt_engine *e);
int pt_agent_forget(pt_engine *e, uint64_t addr);
void pt_agent_forget_all(pt_engine *e);
void pt_agent_free(pt_engine *e);
int pt_emulate_load(pt_engine *e, int32_t tid, const struct user_regs_struct *regs);
/* ptcore_agent.c */
int breakpoint_hit(pt_engine *e, pt_thread *t, const struct user_regs_struct *r);
int pass_breakpoints(pt_engine *e, int hold, int found);
#pragma GCC visibility pop

#endif
