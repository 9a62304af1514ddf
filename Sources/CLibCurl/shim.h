#ifndef CARE_AGENT_CLIBCURL_SHIM_H
#define CARE_AGENT_CLIBCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt and curl_easy_getinfo are variadic: Swift cannot call them directly. */
static inline CURLcode care_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode care_curl_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode care_curl_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode care_curl_setopt_off_t(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode care_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode care_curl_getinfo_off_t(CURL *h, CURLINFO i, curl_off_t *v) { return curl_easy_getinfo(h, i, v); }
/* CURLAUTH_ANY is a macro Swift does not import (~CURLAUTH_DIGEST_IE). Negotiate is left out:
   offered beside Basic, libcurl picks it and never sends the configured user:password. */
static inline unsigned long care_curlauth_proxy(void) { return CURLAUTH_ANY & ~CURLAUTH_NEGOTIATE; }
#endif
