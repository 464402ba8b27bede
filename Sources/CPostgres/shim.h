// libpq, the PostgreSQL client library (Debian: libpq-dev, headers in /usr/include/postgresql).
#pragma once
#include <postgresql/libpq-fe.h>
