/* The TLS context: TLS 1.2 and 1.3 with Mozilla's "intermediate" cipher list, ALPN h2 and
 * http/1.1, and a self-signed certificate generated in memory when none is configured. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "gw_int.h"
#include "sl_log.h"

/* Mozilla intermediate (TLS 1.2 suites; TLS 1.3 suites are OpenSSL's defaults) */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

static void ssl_error(char *errbuf, size_t errlen, const char *what)
{
    char detail[256];
    ERR_error_string_n(ERR_get_error(), detail, sizeof(detail));
    snprintf(errbuf, errlen, "%s: %s", what, detail);
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509_EXTENSION *ext;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return -1;
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return 0;
}

/* A P-256 certificate for localhost / 127.0.0.1 / ::1, valid 30 days. */
static int self_signed(SSL_CTX *ssl_ctx, const char *out_path, char *errbuf, size_t errlen)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *name;
    int ret = -1;

    if (pkey == NULL || cert == NULL) {
        ssl_error(errbuf, errlen, "self-signed certificate");
        goto Exit;
    }
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), (long)(sl_wall_ms() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 24 * 3600);
    X509_set_pubkey(cert, pkey);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Sluice dev", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(cert, name);
    if (add_ext(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") != 0 ||
        add_ext(cert, NID_basic_constraints, "critical,CA:TRUE") != 0 ||
        add_ext(cert, NID_key_usage, "critical,digitalSignature,keyCertSign") != 0 ||
        add_ext(cert, NID_ext_key_usage, "serverAuth") != 0 ||
        X509_sign(cert, pkey, EVP_sha256()) == 0) {
        ssl_error(errbuf, errlen, "self-signed certificate");
        goto Exit;
    }
    if (SSL_CTX_use_certificate(ssl_ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ssl_ctx, pkey) != 1) {
        ssl_error(errbuf, errlen, "self-signed certificate");
        goto Exit;
    }
    if (out_path != NULL && out_path[0] != '\0') {
        FILE *fp = fopen(out_path, "w");
        if (fp == NULL || PEM_write_X509(fp, cert) != 1) {
            snprintf(errbuf, errlen, "tls.self_signed_out: cannot write %s", out_path);
            if (fp != NULL)
                fclose(fp);
            goto Exit;
        }
        fclose(fp);
    }
    SL_WARN("no tls.cert_file configured: serving a generated self-signed certificate",
            "out=\"%s\"", out_path != NULL ? out_path : "");
    ret = 0;
Exit:
    X509_free(cert);
    EVP_PKEY_free(pkey);
    return ret;
}

SSL_CTX *gw_tls_create(const gw_config_t *gc, char *errbuf, size_t errlen)
{
    SSL_CTX *ssl_ctx = SSL_CTX_new(TLS_server_method());

    if (ssl_ctx == NULL) {
        ssl_error(errbuf, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_SERVER);
    if (SSL_CTX_set_cipher_list(ssl_ctx, tls12_ciphers) != 1) {
        ssl_error(errbuf, errlen, "cipher list");
        goto Fail;
    }
    if (gc->tls_cert_file[0] != '\0') {
        if (gc->tls_key_file[0] == '\0') {
            snprintf(errbuf, errlen, "tls.key_file: required when tls.cert_file is set");
            goto Fail;
        }
        if (SSL_CTX_use_certificate_chain_file(ssl_ctx, gc->tls_cert_file) != 1) {
            ssl_error(errbuf, errlen, "tls.cert_file");
            goto Fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ssl_ctx, gc->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ssl_ctx) != 1) {
            ssl_error(errbuf, errlen, "tls.key_file");
            goto Fail;
        }
    } else if (self_signed(ssl_ctx, gc->tls_self_signed_out, errbuf, errlen) != 0) {
        goto Fail;
    }
    h2o_ssl_register_alpn_protocols(ssl_ctx, h2o_http2_alpn_protocols);
    return ssl_ctx;
Fail:
    SSL_CTX_free(ssl_ctx);
    return NULL;
}
