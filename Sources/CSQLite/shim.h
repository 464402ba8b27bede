// SQLite 3. Variadic configuration calls are wrapped in static inline
// functions because Swift cannot call C variadics directly.
#pragma once
#include <sqlite3.h>

/// sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, on, NULL)
static inline int lethe_sqlite3_db_config_int(sqlite3 *db, int op, int value) {
    int out = 0;
    return sqlite3_db_config(db, op, value, &out);
}

/// The SQLITE_TRANSIENT destructor, which Swift cannot spell as a constant.
static inline sqlite3_destructor_type lethe_sqlite3_transient(void) {
    return SQLITE_TRANSIENT;
}
