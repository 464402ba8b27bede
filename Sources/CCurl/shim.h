// libcurl (libcurl4-openssl-dev): the easy interface, synchronous transfers.
// curl_easy_setopt / curl_easy_getinfo are variadic; Swift calls these typed wrappers.
#pragma once
#include <curl/curl.h>

static inline CURLcode lethe_curl_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode lethe_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode lethe_curl_setopt_ptr(CURL *h, CURLoption o, const void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode lethe_curl_setopt_str(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode lethe_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }

typedef size_t (*lethe_curl_io_cb)(char *ptr, size_t size, size_t n, void *user);
static inline CURLcode lethe_curl_setopt_io(CURL *h, CURLoption o, lethe_curl_io_cb f) { return curl_easy_setopt(h, o, f); }

static inline CURLcode lethe_curl_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
