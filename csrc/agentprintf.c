/* agentprintf.c - the agent `printf` op in C: ptstub/rsp/agentprintf.py written again.
 *
 * The format travels as the user typed it between GDB's quotes: escapes are undone here (the ones of
 * GDB's format_pieces; any other is an error, an unescaped `"` or a NUL ends the format).  Directives
 * follow format_pieces' grammar and checks (flags `0-+ #`, width, precision, length `h l ll L H D DD z
 * I64`, conversions `d i u o x X c s p e f g E G`).  Integers are converted as gdbserver's C code
 * converts the 64-bit stack values (`int` for plain directives, `h` a short, 64 bits for l, ll, z)
 * and formatted by snprintf, one conversion at a time; %c, %s and %p are padded here as C pads them
 * (%p as glibc prints a pointer: 0x..., or (nil)).  Floating point, wide characters and `*` are
 * errors: the command prints nothing, as in the Python module.  A printf prints all of its output
 * or nothing.
 */
#include "agentexpr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STRING_LIMIT (1u << 16) /* a %s with no NUL for this long prints this much */
#define WIDTH_LIMIT 4096        /* larger widths and precisions are left to the Python module */
#define CHUNK 256
#define PAGE 4096

typedef enum { ARG_INT, ARG_LONG, ARG_STRING, ARG_POINTER, ARG_OTHER } arg_class;

typedef struct directive {
    char flags[8];   /* each flag once is enough: repeats change nothing in C */
    uint32_t width;
    int32_t precision; /* -1: none */
    char length[3];  /* "", "h", "l", "ll", "z", "L", "H", "D", "DD" (I64 is ll) */
    char conversion;
    arg_class cls;
} directive;

typedef struct outbuf {
    uint8_t *data;
    uint64_t len, cap;
} outbuf;

static int put(outbuf *o, const void *p, uint64_t n)
{
    if (o->len + n > o->cap) {
        uint64_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n)
            cap *= 2;
        uint8_t *d = realloc(o->data, cap);
        if (!d)
            return PT_AX_E_OUTPUT;
        o->data = d;
        o->cap = cap;
    }
    memcpy(o->data + o->len, p, n);
    o->len += n;
    return 0;
}

static int put_padded(outbuf *o, const directive *d, const void *body, uint64_t n)
{
    int left = strchr(d->flags, '-') != NULL;
    uint64_t fill = d->width > n ? d->width - n : 0;
    int rc = 0;
    for (uint64_t i = 0; i < fill && !left && rc == 0; i++)
        rc = put(o, " ", 1);
    if (rc == 0)
        rc = put(o, body, n);
    for (uint64_t i = 0; i < fill && left && rc == 0; i++)
        rc = put(o, " ", 1);
    return rc;
}

static int unescape(const uint8_t *raw, uint32_t len, outbuf *o)
{
    static const char from[] = "\\abefnrtv\"", to[] = "\\\a\b\x1b\f\n\r\t\v\"";
    for (uint32_t pos = 0; pos < len && raw[pos] && raw[pos] != '"';) {
        uint8_t c = raw[pos++];
        if (c == '\\') {
            uint8_t esc = pos < len ? raw[pos] : 0;
            pos++;
            const char *at = esc ? strchr(from, esc) : NULL;
            if (!at)
                return PT_AX_E_FORMAT;
            c = (uint8_t)to[at - from];
        }
        if (put(o, &c, 1) < 0)
            return PT_AX_E_OUTPUT;
    }
    return 0;
}

static int has(const directive *d, const char *any)
{
    return strpbrk(d->flags, any) != NULL;
}

static int len_is(const directive *d, const char *a, const char *b, const char *c)
{
    return !strcmp(d->length, a) || (b && !strcmp(d->length, b)) || (c && !strcmp(d->length, c));
}

/* format_pieces' checks of what may go with what, and the class of the argument. */
static int classify(directive *d)
{
    char c = d->conversion;
    int prec = d->precision >= 0;
    if (c && strchr("diuoxX", c)) {
        if ((c == 'u' && has(d, "#")) || (strchr("uoxX", c) && has(d, "+ ")) || len_is(d, "L", NULL, NULL))
            return PT_AX_E_FORMAT;
        d->cls = len_is(d, "l", "ll", "z") ? ARG_LONG : ARG_INT;
    } else if (c == 'c') {
        if (len_is(d, "ll", "h", "L") || prec || has(d, "0 +"))
            return PT_AX_E_FORMAT;
        d->cls = len_is(d, "l", NULL, NULL) ? ARG_OTHER : ARG_INT;
    } else if (c == 'p') {
        if (len_is(d, "l", "ll", "h") || len_is(d, "L", NULL, NULL) || prec || has(d, "#0 +"))
            return PT_AX_E_FORMAT;
        d->cls = ARG_POINTER;
    } else if (c == 's') {
        if (len_is(d, "ll", "h", "L") || has(d, "0 +"))
            return PT_AX_E_FORMAT;
        d->cls = len_is(d, "l", NULL, NULL) ? ARG_OTHER : ARG_STRING;
    } else if (c && strchr("efgEG", c)) {
        d->cls = ARG_OTHER; /* double, long double, decimal float: not in an agent printf */
        if (len_is(d, "l", "ll", "h"))
            return PT_AX_E_FORMAT;
    } else {
        return PT_AX_E_FORMAT; /* `*`, `n`, or no conversion known */
    }
    return 0;
}

static uint32_t number(const uint8_t *t, uint64_t n, uint64_t *pos, int *huge)
{
    uint64_t v = 0;
    while (*pos < n && t[*pos] >= '0' && t[*pos] <= '9') {
        v = v * 10 + (uint64_t)(t[(*pos)++] - '0');
        if (v > WIDTH_LIMIT) {
            *huge = 1;
            v = WIDTH_LIMIT;
        }
    }
    return (uint32_t)v;
}

static void parse_length(const uint8_t *t, uint64_t n, uint64_t *pos, directive *d)
{
    static const char *mods[] = {"ll", "DD", "I64", "h", "l", "L", "H", "D", "z"};
    for (int i = 0; i < 9; i++) {
        size_t k = strlen(mods[i]);
        if (*pos + k <= n && !memcmp(t + *pos, mods[i], k)) {
            strcpy(d->length, i == 2 ? "ll" : mods[i]);
            *pos += k;
            return;
        }
    }
}

/* The directive at t[*pos] (just after its `%`); *pos moves past it. */
static int parse_directive(const uint8_t *t, uint64_t n, uint64_t *pos, directive *d, int *huge)
{
    memset(d, 0, sizeof *d);
    d->precision = -1;
    int nflags = 0;
    while (*pos < n && t[*pos] && strchr("0-+ #", t[*pos])) {
        if (!strchr(d->flags, t[*pos]))
            d->flags[nflags++] = (char)t[*pos];
        (*pos)++;
    }
    d->width = number(t, n, pos, huge);
    if (*pos < n && t[*pos] == '.') {
        (*pos)++;
        d->precision = (int32_t)number(t, n, pos, huge);
    }
    parse_length(t, n, pos, d);
    if (*pos >= n)
        return PT_AX_E_FORMAT; /* incomplete format specifier */
    d->conversion = (char)t[(*pos)++];
    return classify(d);
}

static int read_string(const pt_ax_env *env, uint64_t addr, int32_t precision, outbuf *s)
{
    uint64_t wanted = precision >= 0 && (uint32_t)precision < STRING_LIMIT ? (uint64_t)precision : STRING_LIMIT;
    uint8_t buf[CHUNK];
    while (s->len < wanted) {
        uint64_t here = addr + s->len, size = CHUNK;
        if (PAGE - here % PAGE < size)
            size = PAGE - here % PAGE;
        if (wanted - s->len < size)
            size = wanted - s->len;
        int64_t got = env->read_memory(env->ctx, here, buf, size);
        if (got < 0)
            got = 0;
        uint8_t *nul = memchr(buf, 0, (size_t)got);
        if (nul)
            return put(s, buf, (uint64_t)(nul - buf));
        if (put(s, buf, (uint64_t)got) < 0)
            return PT_AX_E_OUTPUT;
        if ((uint64_t)got < size)
            return PT_AX_E_MEMORY; /* memory ends before the NUL */
    }
    return 0;
}

static int convert_string(outbuf *o, const directive *d, uint64_t value, const pt_ax_env *env)
{
    outbuf s = {0};
    int rc = value ? read_string(env, value, d->precision, &s) : put(&s, "(null)", 6);
    uint64_t n = s.len;
    if (d->precision >= 0 && (uint64_t)d->precision < n)
        n = (uint64_t)d->precision;
    if (rc == 0)
        rc = put_padded(o, d, s.data, n);
    free(s.data);
    return rc;
}

static int convert_integer(outbuf *o, const directive *d, uint64_t value)
{
    char spec[48], text[WIDTH_LIMIT * 2 + 64];
    int at = 0;
    spec[at++] = '%';
    at += snprintf(spec + at, sizeof spec - (size_t)at, "%s", d->flags);
    if (d->width)
        at += snprintf(spec + at, sizeof spec - (size_t)at, "%u", d->width);
    if (d->precision >= 0)
        at += snprintf(spec + at, sizeof spec - (size_t)at, ".%d", d->precision);
    int is_long = d->cls == ARG_LONG, is_short = !strcmp(d->length, "h");
    snprintf(spec + at, sizeof spec - (size_t)at, "%s%c", is_long ? "ll" : is_short ? "h" : "", d->conversion);
    int n;
    int is_signed = d->conversion == 'd' || d->conversion == 'i';
    if (is_long)
        n = is_signed ? snprintf(text, sizeof text, spec, (long long)value)
                      : snprintf(text, sizeof text, spec, (unsigned long long)value);
    else
        n = is_signed ? snprintf(text, sizeof text, spec, (int)(uint32_t)value)
                      : snprintf(text, sizeof text, spec, (unsigned)(uint32_t)value);
    if (n < 0 || (size_t)n >= sizeof text)
        return PT_AX_E_OUTPUT;
    return put(o, text, (uint64_t)n);
}

static int convert(outbuf *o, const directive *d, uint64_t value, const pt_ax_env *env)
{
    if (d->cls == ARG_STRING)
        return convert_string(o, d, value, env);
    if (d->cls == ARG_POINTER) {
        char text[24];
        int n = value ? snprintf(text, sizeof text, "0x%llx", (unsigned long long)value)
                      : snprintf(text, sizeof text, "(nil)");
        return put_padded(o, d, text, (uint64_t)n);
    }
    if (d->conversion == 'c') {
        uint8_t byte = (uint8_t)value;
        return put_padded(o, d, &byte, 1);
    }
    return convert_integer(o, d, value);
}

/* Walk the format: with o == NULL only count the directives and check them (*count), else print. */
static int walk(const outbuf *text, const uint64_t *args, int32_t nargs, const pt_ax_env *env, outbuf *o,
                int32_t *count, int *huge)
{
    const uint8_t *t = text->data;
    uint64_t n = text->len, pos = 0;
    int32_t used = 0;
    int rc = 0;
    while (pos < n && rc == 0) {
        uint64_t start = pos;
        while (pos < n && t[pos] != '%')
            pos++;
        if (o && pos > start)
            rc = put(o, t + start, pos - start);
        if (pos >= n || rc < 0)
            break;
        if (pos + 1 < n && t[pos + 1] == '%') {
            rc = o ? put(o, "%", 1) : 0;
            pos += 2;
            continue;
        }
        pos++;
        directive d;
        if ((rc = parse_directive(t, n, &pos, &d, huge)) < 0)
            break;
        if (!o && d.cls == ARG_OTHER)
            rc = PT_AX_E_FORMAT;
        else if (o)
            rc = used < nargs ? convert(o, &d, args[used], env) : PT_AX_E_FORMAT;
        used++;
    }
    *count = used;
    return rc;
}

static int format_text(const uint8_t *format, uint32_t len, outbuf *text, int *huge)
{
    int rc = unescape(format, len, text);
    int32_t count;
    if (rc == 0)
        rc = walk(text, NULL, 0, NULL, NULL, &count, huge);
    return rc < 0 ? rc : count;
}

int pt_ax_printf(const uint8_t *format, uint32_t len, const uint64_t *args, int32_t nargs, const pt_ax_env *env)
{
    outbuf text = {0}, out = {0};
    int huge = 0, count;
    int rc = format_text(format, len, &text, &huge);
    if (rc >= 0) {
        count = rc;
        rc = count != nargs ? PT_AX_E_FORMAT : huge ? PT_AX_E_UNSUPPORTED : 0;
    }
    if (rc == 0)
        rc = walk(&text, args, nargs, env, &out, &count, &huge);
    if (rc == 0 && out.len)
        rc = env->output(env->ctx, out.data, out.len);
    free(text.data);
    free(out.data);
    return rc;
}

/* PT_AX_E_UNSUPPORTED for a format only the Python module prints as it should (a width or precision
 * above WIDTH_LIMIT); 0 otherwise, errors included: C and Python reject the same formats. */
int pt_ax_format_check(const uint8_t *format, uint32_t len)
{
    outbuf text = {0};
    int huge = 0;
    format_text(format, len, &text, &huge);
    free(text.data);
    return huge ? PT_AX_E_UNSUPPORTED : 0;
}
