/* LeakSanitizer defaults for the gateway binary (used by the asan preset, ignored otherwise).
 * libh2o-evloop 2.2.5 keeps per-thread recycle bins (socket buffers, HPACK buffers, the
 * multithread queue) that it never frees; when a loop thread exits they become unreachable.
 * Only allocations made inside libh2o are suppressed, never ours. */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:libh2o-evloop.so\n";
}
