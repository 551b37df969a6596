/* LeakSanitizer defaults for the gateway binary (used by the asan preset, ignored otherwise).
 * libh2o-evloop 2.2.5 keeps per-thread recycle bins (socket and HPACK buffers, pool chunks)
 * filled through h2o_mem_alloc_recycle, and its multithread queue, which it never frees; when a
 * loop thread exits they become unreachable. Only those two allocation sites are suppressed: a
 * whole-module "leak:libh2o-evloop.so" would also hide our own allocations made inside h2o
 * callbacks (every request handler runs in one). */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n"
           "leak:h2o_multithread_create_queue\n";
}
