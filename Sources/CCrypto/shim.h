// OpenSSL libcrypto: SHA-256, HMAC, Ed25519 (EVP_PKEY), PEM I/O.
#pragma once
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/err.h>
#include <openssl/rand.h>
