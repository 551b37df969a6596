/* The error table behind sl_err.h: one row per code. */
#include "sl_err.h"

static const struct {
    const char *code;
    int status;
    int retryable;
    const char *message;
} err_table[SL_ERR__COUNT] = {
#define SL_ERR_ROW(e, code, status, retry, msg) [SL_ERR_##e] = {code, status, retry, msg},
    SL_ERR_LIST(SL_ERR_ROW)
#undef SL_ERR_ROW
};

static sl_err_t clamp(sl_err_t err)
{
    return (unsigned)err < SL_ERR__COUNT ? err : SL_ERR_INTERNAL;
}

const char *sl_err_code(sl_err_t err)
{
    return err_table[clamp(err)].code;
}

int sl_err_status(sl_err_t err)
{
    return err_table[clamp(err)].status;
}

int sl_err_is_retryable(sl_err_t err)
{
    return err_table[clamp(err)].retryable;
}

const char *sl_err_message(sl_err_t err)
{
    return err_table[clamp(err)].message;
}
