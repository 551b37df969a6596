/* LeakSanitizer defaults for the registry binary (asan preset; ignored otherwise): the same two
 * libh2o-evloop 2.2.5 allocation sites as gateway/gw_lsan.c (per-thread recycle bins h2o never
 * frees), nothing wider. */
const char *__lsan_default_suppressions(void);

const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n"
           "leak:h2o_multithread_create_queue\n";
}
