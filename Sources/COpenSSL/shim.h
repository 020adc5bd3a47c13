#ifndef DS_COPENSSL_SHIM_H
#define DS_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

/* Swift cannot import OpenSSL's function-like macros or its generated stack accessors: these
   wrappers give them a function each, and hold the OSSL_PARAM arrays a Swift caller could not
   build without pointer juggling. */

static inline int ds_ctx_set_protocols(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) && SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
}

/* read_ahead: one recv takes whatever the socket holds (up to the record buffer) instead of
   a 5-byte header and then the record's body, two syscalls per record. */
static inline void ds_ctx_set_modes(SSL_CTX *ctx, int read_ahead) {
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, read_ahead);
}

/* Called by the socket BIO around each of its calls: after a read, notes in the int the
   callback argument points to whether the read came back with fewer bytes than it asked for.
   With read_ahead a read asks for all the record buffer's free space, so a short one emptied
   the socket (an edge-triggered reader then waits for the next edge). */
static inline long ds_bio_note_short_reads(BIO *bio, int oper, const char *argp, size_t len, int argi, long argl,
                                           int ret, size_t *processed) {
    (void)argp; (void)argi; (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        *(int *)BIO_get_callback_arg(bio) = ret > 0 && processed != NULL && *processed < len;
    }
    return ret;
}

/* Makes `ssl`'s socket BIO (SSL_set_fd's) keep `*short_read` up to date. */
static inline void ds_ssl_note_short_reads(SSL *ssl, int *short_read) {
    BIO *bio = SSL_get_rbio(ssl);
    BIO_set_callback_arg(bio, (char *)short_read);
    BIO_set_callback_ex(bio, ds_bio_note_short_reads);
}

/* Renegotiation only costs the server CPU and has no use for HTTP/1.1; compression is CRIME;
   the server's cipher order wins, so a client cannot steer a TLS 1.2 handshake to the weakest
   suite both support. */
static inline void ds_ctx_set_hardening(SSL_CTX *ctx) {
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
}

/* How many TLS 1.3 suites the context offers (SSL_CTX_set_ciphersuites skips names it does not
   know, so this is how an unknown one is told apart). */
static inline int ds_ctx_tls13_suite_count(SSL_CTX *ctx) {
    STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
    int count = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
        if (strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(ciphers, i)), "TLSv1.3") == 0) count++;
    }
    return count;
}

static inline void ds_ctx_set_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *), void *arg) {
    SSL_CTX_set_tlsext_servername_callback(ctx, cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}

static inline void ds_ctx_set_server_session_cache(SSL_CTX *ctx) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
}

static inline long ds_ctx_set_ktls(SSL_CTX *ctx, int on) {
#ifdef SSL_OP_ENABLE_KTLS
    if (on) return (long)SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    return (long)SSL_CTX_clear_options(ctx, SSL_OP_ENABLE_KTLS);
#else
    (void)ctx; (void)on; return 0;
#endif
}

/* Whether OpenSSL moved the connection's sending and receiving into the kernel (kTLS). */
static inline int ds_ssl_ktls_both(SSL *ssl) {
#if defined(BIO_CTRL_GET_KTLS_SEND) && defined(BIO_CTRL_GET_KTLS_RECV)
    return BIO_ctrl(SSL_get_wbio(ssl), BIO_CTRL_GET_KTLS_SEND, 0, NULL) > 0
        && BIO_ctrl(SSL_get_rbio(ssl), BIO_CTRL_GET_KTLS_RECV, 0, NULL) > 0;
#else
    (void)ssl; return 0;
#endif
}

/* The certificate's DNS names (subjectAltName), copied into buf one at a time: the number of
   names when index is -1, else the length of name `index` (0 when it is not a DNS name). */
static inline int ds_cert_dns_name(X509 *cert, int index, char *buf, int len) {
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) return index < 0 ? 0 : -1;
    int count = sk_GENERAL_NAME_num(names);
    int result = count;
    if (index >= 0) {
        result = 0;
        if (index < count) {
            GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
            if (name->type == GEN_DNS) {
                const unsigned char *data = ASN1_STRING_get0_data(name->d.dNSName);
                int n = ASN1_STRING_length(name->d.dNSName);
                if (n < len) { memcpy(buf, data, (size_t)n); buf[n] = 0; result = n; }
            }
        }
    }
    GENERAL_NAMES_free(names);
    return result;
}

static inline int ds_cert_common_name(X509 *cert, char *buf, int len) {
    return X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, len);
}

/* Keys a session ticket with `aes` (32 bytes, AES-256-CBC) and `hmac` (32 bytes, HMAC-SHA256);
   for encryption, a fresh random IV is written to `iv`. 1 on success. */
static inline int ds_ticket_keys(EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, const unsigned char *aes,
                                 const unsigned char *hmac, unsigned char *iv, int enc) {
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)hmac, 32);
    params[2] = OSSL_PARAM_construct_end();
    if (!EVP_MAC_CTX_set_params(hctx, params)) return 0;
    if (enc) {
        if (RAND_bytes(iv, 16) <= 0) return 0;
        return EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv);
    }
    return EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, aes, iv);
}

/* Client side, for the tests that play the client. */
static inline long ds_ssl_set_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline int ds_ssl_set_version_range(SSL *ssl, int min, int max) {
    return SSL_set_min_proto_version(ssl, min) && SSL_set_max_proto_version(ssl, max);
}
static inline int ds_tls1_1_version(void) { return TLS1_1_VERSION; }
static inline int ds_tls1_2_version(void) { return TLS1_2_VERSION; }
static inline int ds_tls1_3_version(void) { return TLS1_3_VERSION; }

#endif
